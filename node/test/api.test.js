// The shape of the package: CommonJS and ESM faces, index.d.ts up to date with the Rust items and
// stating every option the core has, argument checks.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ko = require('..')

const NODE_DIR = path.resolve(__dirname, '..')
const DTS = fs.readFileSync(path.join(NODE_DIR, 'index.d.ts'), 'utf8')
const FUNCTIONS = ['resolve', 'resolveString', 'build', 'publish', 'apply', 'create', 'delete']

test('CommonJS exports', () => {
  assert.deepEqual(Object.keys(ko).sort(), ['KoError', 'Session', 'version', ...FUNCTIONS].sort())
  assert.equal(ko.publish, ko.build)
  assert.equal(ko.version, require('../package.json').version)
  assert.ok(new ko.KoError('x', { code: 'KO_BUILD' }) instanceof Error)
})

test('ESM exports the same objects', async () => {
  const esm = await import('ko')
  for (const name of ['KoError', 'Session', 'version', ...FUNCTIONS]) assert.equal(esm[name], ko[name], name)
  const { resolve } = await import('../index.mjs')
  assert.equal(resolve, ko.resolve)
})

test('index.d.ts is what regenerating it from node/src and types/header.d.ts gives', () => {
  const check = spawnSync(process.execPath, ['scripts/build.js', '--debug', '--check-dts'], {
    cwd: NODE_DIR,
    encoding: 'utf8',
  })
  assert.equal(check.status, 0, check.stderr)
})

test('the Options interface names every option of the core, and nothing else', () => {
  const body = DTS.slice(DTS.indexOf('export interface Options {'))
  const block = body.slice(0, body.indexOf('\n}\n'))
  const declared = [...block.matchAll(/^ {2}(\w+)\?:/gm)].map((m) => m[1])
  const native = require('../ko.node')
  assert.deepEqual(declared, [...native.optionNames(), 'onEvent'])
})

test('every function and Session method is declared', () => {
  for (const name of FUNCTIONS.filter((n) => n !== 'delete')) {
    assert.match(DTS, new RegExp(`export declare function ${name}\\(`), name)
  }
  assert.match(DTS, /export \{ kubectlDelete as delete \}/)
  for (const method of ['build', 'publish', 'resolve', 'resolveString', 'apply', 'create', 'delete', 'finish']) {
    assert.equal(typeof ko.Session.prototype[method], 'function', method)
    assert.match(DTS, new RegExp(`\\n  ${method}\\(`), method)
  }
})

test('arguments are checked before anything runs', async () => {
  const session = new ko.Session({ push: false })
  const invalid = (message) => (e) => e instanceof ko.KoError && e.code === 'KO_INVALID_INPUT' && message.test(e.message)
  await assert.rejects(session.build(['./a', 3]), invalid(/importPaths must be a string or an array of strings/))
  await assert.rejects(session.resolve(null), invalid(/paths must be/))
  await assert.rejects(session.resolveString(5), invalid(/yaml must be a string/))
  await assert.rejects(session.build('.', { signal: {} }), invalid(/signal must be an AbortSignal/))
  await assert.rejects(session.build('.', 'x'), invalid(/options must be an object/))
  await assert.rejects(session.apply('config', { kubectlArgs: [1] }), invalid(/kubectlArgs must be/))
  await assert.rejects(session.resolve('config', { kubectlArgs: ['-n'] }), invalid(/unknown option kubectlArgs/))
  assert.throws(() => new ko.Session({ onEvent: 'no' }), invalid(/onEvent must be a function/))
  assert.throws(() => new ko.Session({ jobs: 'many' }), invalid(/invalid options: invalid type: string "many"/))
})
