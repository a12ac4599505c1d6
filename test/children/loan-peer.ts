// The second process of test/loan-model.test.ts: runs loan operations on channel "loans"
// of the segment it opens and answers each with what happened (test/helpers/loan-ops.ts).
import { SharedMemory } from 'interprocess-objects'
import { LoanSide, type LoanOp } from '../helpers/loan-ops'

const [name] = process.argv.slice(2)
const side = new LoanSide(SharedMemory.open({ name: name! }))
process.on('message', (op: LoanOp) => {
  process.send!(side.run(op))
})
process.on('disconnect', () => process.exit(0))
process.send!('ready')
