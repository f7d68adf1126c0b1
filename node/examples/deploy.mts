// A small typed deploy script over ko, checked by `tsc --noEmit --strict -p examples`
// (scripts/test.sh runs it). Usage, once compiled: node deploy.mjs MODULE_DIR DOCKER_REPO
// Builds MODULE_DIR's commands, resolves its config/ directory with its own progress display,
// and stops cleanly on Ctrl-C.
import { KoError, Session, resolve, type KoErrorCode, type KoEvent, type Published } from 'ko'

function progress(event: KoEvent): void {
  switch (event.kind) {
    case 'buildStarted':
      console.error(`building ${event.importPath} for ${event.platform}`)
      break
    case 'blobProgress':
      console.error(`  ${event.digest.slice(7, 19)} ${Math.round((100 * event.sent) / event.total)}%`)
      break
    case 'published':
      console.error(`published ${event.reference}`)
      break
    default:
      break
  }
}

async function release(module: string, repo: string, signal: AbortSignal): Promise<[Published[], string]> {
  const session = new Session({ dockerRepo: repo, workingDir: module, platforms: 'linux/amd64', onEvent: progress })
  try {
    const built: Published[] = await session.build(['./cmd/hello', './cmd/second'], { signal })
    const yaml: string = await session.resolve('config', { recursive: true, signal })
    return [built, yaml]
  } finally {
    await session.finish()
  }
}

const [module, repo] = process.argv.slice(2)
if (module === undefined || repo === undefined) {
  console.error('usage: deploy MODULE_DIR DOCKER_REPO')
  process.exit(2)
}
const controller = new AbortController()
process.once('SIGINT', () => controller.abort())
try {
  const [built, yaml] = await release(module, repo, controller.signal)
  for (const p of built) console.error(`${p.importPath} -> ${p.reference}`)
  process.stdout.write(yaml)
  // The one-shot form: a session of its own for one call.
  const again: string = await resolve('config/deployment.yaml', { dockerRepo: repo, workingDir: module })
  console.error(`${again.length} bytes resolved again`)
} catch (e) {
  if (!(e instanceof KoError)) throw e
  const code: KoErrorCode = e.code
  console.error(code === 'KO_CANCELLED' ? 'interrupted' : `ko failed (${code}): ${e.message}`)
  if (e.exitCode !== undefined) console.error(`kubectl exited with ${e.exitCode}`)
  process.exitCode = 1
}
