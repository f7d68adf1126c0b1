// The ES module face of the package: the same objects as the CommonJS index.js.
import { createRequire } from 'node:module'

const ko = createRequire(import.meta.url)('./index.js')

export const { KoError, Session, resolve, resolveString, build, publish, apply, create, version } = ko
const kubectlDelete = ko.delete
export { kubectlDelete as delete }
