// Runs once before the test files: the consumer and bundling tests use the package as
// it ships (dist/ and the prebuilt addon), so build both from the sources first, while
// no test is running yet. The prebuild is rebuilt only when a native source is newer.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.join(__dirname, '..')

function newestMtime(dir: string): number {
  return Math.max(0, ...fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f)).mtimeMs))
}

export default function setup(): void {
  const npm = (script: string) => execFileSync('npm', ['run', '-s', script], { cwd: root, stdio: 'inherit' })
  npm('build')
  const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)
  const sources = Math.max(newestMtime(path.join(root, 'native')), fs.statSync(path.join(root, 'binding.gyp')).mtimeMs)
  if (!fs.existsSync(prebuilds) || newestMtime(prebuilds) < sources) npm('build:prebuilds')
}
