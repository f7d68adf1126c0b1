// The npm package `ko`: ko's engine in-process, as promises. This file is the package's face
// over the native addon (ko.node, built from node/src by scripts/build.js): it checks arguments,
// wires each call's AbortSignal to a native cancel token, turns the addon's error objects into
// KoError, delivers events (writing kubectl's lines to process.stdout/stderr), and makes the
// one-shot functions, each on a session of its own. The types are in index.d.ts.
'use strict'

const native = loadAddon()

function loadAddon() {
  try {
    return require('./ko.node')
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new Error(`ko's native addon is not built: run \`npm run build\` in ${__dirname} (it needs cargo)`, {
        cause: e,
      })
    }
    throw e
  }
}

class KoError extends Error {
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = options.code
    if (options.exitCode !== undefined) this.exitCode = options.exitCode
  }

  get name() {
    return 'KoError'
  }
}

/** The KoError for an error object of the addon (`code`, `message`, `exitCode`, `cause`). */
function fromNative(e) {
  if (!(e instanceof Error)) return e
  if (typeof e.code !== 'string' || !e.code.startsWith('KO_')) {
    // A value the addon could not convert: the checks below should have caught it.
    return new KoError(`ko's addon refused an argument: ${e.message} (this is a bug in ko; please report it)`, {
      code: 'KO_INTERNAL',
      cause: e,
    })
  }
  const cause = e.cause instanceof Error && typeof e.cause.code === 'string' ? fromNative(e.cause) : e.cause
  return new KoError(e.message, { code: e.code, cause, exitCode: e.exitCode })
}

function invalid(message) {
  return new KoError(message, { code: 'KO_INVALID_INPUT' })
}

/** `value` as a list of strings (one string is a list of one). */
function strings(value, name) {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    throw invalid(`${name} must be a string or an array of strings`)
  }
  return list
}

function optionsObject(value, name) {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`${name} must be an object`)
  return value
}

/** `options` without the keys whose value is `undefined` (as if they were absent). */
function defined(options) {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
}

/** Splits a call's own options (`signal` and `ownKeys`) from the rest. */
function split(options, ownKeys) {
  const own = {}
  const rest = {}
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue
    if (key === 'signal' || ownKeys.includes(key)) own[key] = value
    else rest[key] = value
  }
  return [own, rest]
}

const RESOLVE_KEYS = ['recursive', 'selector', 'strict']
const KUBECTL_KEYS = [...RESOLVE_KEYS, 'kubectlArgs']

class Session {
  #native
  #onEvent

  constructor(options) {
    const { onEvent, ...rest } = optionsObject(options, 'options')
    if (onEvent !== undefined && typeof onEvent !== 'function') throw invalid('onEvent must be a function')
    this.#onEvent = onEvent
    try {
      this.#native = native.newSession(defined(rest))
    } catch (e) {
      throw fromNative(e)
    }
  }

  async build(importPaths, options) {
    const paths = strings(importPaths, 'importPaths')
    return this.#call(options, [], (dispatch, cancel) => native.build(this.#native, dispatch, paths, cancel))
  }

  async publish(importPaths, options) {
    return this.build(importPaths, options)
  }

  async resolve(paths, options) {
    const files = strings(paths, 'paths')
    return this.#call(options, RESOLVE_KEYS, (dispatch, cancel, args) =>
      native.resolve(this.#native, dispatch, files, args, cancel),
    )
  }

  async resolveString(yaml, options) {
    if (typeof yaml !== 'string') throw invalid('yaml must be a string')
    return this.#call(options, RESOLVE_KEYS, (dispatch, cancel, args) =>
      native.resolveString(this.#native, dispatch, yaml, args, cancel),
    )
  }

  apply(paths, options) {
    return this.#kubectl('apply', paths, options)
  }

  create(paths, options) {
    return this.#kubectl('create', paths, options)
  }

  async delete(kubectlArgs, options) {
    const args = strings(kubectlArgs, 'kubectlArgs')
    return this.#call(options, [], (dispatch, cancel) => native.kubectlDelete(this.#native, dispatch, args, cancel))
  }

  finish() {
    return this.#call(undefined, [], (dispatch) => native.finish(this.#native, dispatch))
  }

  async #kubectl(verb, paths, options) {
    const files = strings(paths, 'paths')
    return this.#call(options, KUBECTL_KEYS, (dispatch, cancel, args) => {
      if (args.kubectlArgs !== undefined) args.kubectlArgs = strings(args.kubectlArgs, 'kubectlArgs')
      return native.apply(this.#native, dispatch, verb, files, args, cancel)
    })
  }

  /** Runs one native call: checks its options, wires its signal, converts its errors. */
  async #call(options, ownKeys, start) {
    const { signal, ...args } = optionsObject(options, 'options')
    for (const key of Object.keys(args)) {
      if (args[key] !== undefined && !ownKeys.includes(key)) {
        throw invalid(`unknown option ${key} for this call; session options go to new Session()`)
      }
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal')
    if (signal?.aborted) throw new KoError('cancelled', { code: 'KO_CANCELLED', cause: signal.reason })
    const cancel = native.newCancel()
    const abort = () => native.cancel(cancel)
    signal?.addEventListener('abort', abort, { once: true })
    try {
      return await start((event) => this.#dispatch(event), cancel, defined(args))
    } catch (e) {
      throw fromNative(e)
    } finally {
      signal?.removeEventListener('abort', abort)
    }
  }

  #dispatch(event) {
    // null marks a point the addon waits for, so that a call's events come before its result.
    if (event === null) return
    if (event.kind === 'kubectlOutput') {
      ;(event.stream === 'stdout' ? process.stdout : process.stderr).write(`${event.line}\n`)
    }
    if (this.#onEvent !== undefined) {
      try {
        this.#onEvent(event)
      } catch (e) {
        process.nextTick(() => {
          throw e
        })
      }
    }
  }
}

/** Runs `call` on a session made from `options` (less the call's own keys), then finishes it. */
async function oneShot(options, ownKeys, call, defaults = {}) {
  const [own, sessionOptions] = split(optionsObject(options, 'options'), ownKeys)
  const session = new Session({ ...defaults, ...sessionOptions })
  const result = await call(session, own)
  await session.finish()
  return result
}

function resolve(paths, options) {
  return oneShot(options, RESOLVE_KEYS, (s, own) => s.resolve(paths, own))
}

function resolveString(yaml, options) {
  return oneShot(options, RESOLVE_KEYS, (s, own) => s.resolveString(yaml, own))
}

function build(importPaths, options) {
  return oneShot(options, [], (s, own) => s.build(importPaths, own))
}

function apply(paths, options) {
  return oneShot(options, KUBECTL_KEYS, (s, own) => s.apply(paths, own))
}

function create(paths, options) {
  return oneShot(options, KUBECTL_KEYS, (s, own) => s.create(paths, own))
}

function kubectlDelete(kubectlArgs, options) {
  // Nothing is published, so no destination is needed.
  return oneShot(options, [], (s, own) => s.delete(kubectlArgs, own), { push: false })
}

module.exports = {
  KoError,
  Session,
  resolve,
  resolveString,
  build,
  publish: build,
  apply,
  create,
  delete: kubectlDelete,
  version: require('./package.json').version,
}
