// npm test runs this package's suites twice (the second with FDRECYCLE_DISABLE=1): the first must recycle.
import { runModeSuite } from '../../../test/helpers/run-mode.js'

runModeSuite()
