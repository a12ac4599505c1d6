export class Point {
  x: number
  y: number
  constructor(x: number, y: number) {
    this.x = x
    this.y = y
  }
  norm(): number {
    return Math.hypot(this.x, this.y)
  }
  moveBy(dx: number): void {
    this.x += dx
  }
}
