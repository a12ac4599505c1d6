// The ~3 KB nested document the codec and frames scenarios both carry: an order with
// 12 line items, a history, a long note, a Date and a Map.
export function makeDocument() {
  const items = Array.from({ length: 12 }, (_, i) => ({
    sku: `SKU-${1000 + i}`,
    title: `Item number ${i}: a product with a moderately long title`,
    qty: 1 + (i % 3),
    price: 9.99 + i * 2.5,
    inStock: i % 5 !== 0,
    tags: ['new', i % 2 === 0 ? 'regular' : 'sale', `category-${i % 4}`],
    dims: [10 + i, 20.5, 5.25],
  }))
  return {
    id: 'order-2024-000123',
    createdAt: new Date(Date.UTC(2024, 4, 17, 9, 30, 12)),
    status: 'shipped',
    customer: {
      id: 48213,
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      vip: true,
      address: { street: '12 Analytical Engine Way', city: 'London', zip: 'NW1 2DB', country: 'GB' },
    },
    items,
    totals: { subtotal: 345.67, tax: 28.12, shipping: 4.99, total: 378.78, currency: 'EUR' },
    history: [
      { at: 1715938212000, event: 'created', by: 'web' },
      { at: 1715938512000, event: 'paid', by: 'psp' },
      { at: 1715949312000, event: 'packed', by: 'warehouse-3' },
      { at: 1715960112000, event: 'shipped', by: 'carrier' },
    ],
    notes: 'Please leave the parcel with the neighbour at number 14 if nobody answers. '.repeat(4).trim(),
    meta: new Map<string, unknown>([
      ['source', 'web'],
      ['campaign', 'spring-sale'],
      ['retries', 2],
      ['experiments', [3, 7, 11]],
    ]),
  }
}
