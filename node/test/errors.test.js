// Every error code, from a real bad input: KoError with the CLI's message, `code`, and `cause`.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')

const ko = require('..')
const { startRegistry, fixtureApp, tempDir } = require('./harness')

let app
const unreachable = '127.0.0.1:1/x'

before(() => {
  app = fixtureApp()
})

/** Asserts that `promise` rejects with a KoError of `code` whose message matches `message`. */
async function rejectsWith(promise, code, message) {
  let caught
  await assert.rejects(promise, (e) => {
    caught = e
    return true
  })
  assert.ok(caught instanceof ko.KoError, `not a KoError: ${caught}`)
  assert.ok(caught instanceof Error)
  assert.equal(caught.name, 'KoError')
  assert.equal(caught.code, code, caught.message)
  assert.match(caught.message, message)
  return caught
}

test('KO_INVALID_INPUT: a malformed repository, an unknown option, a non-main package', async () => {
  const e = await rejectsWith(ko.build('./cmd/hello', { dockerRepo: 'UPPER/!!bad', workingDir: app }), 'KO_INVALID_INPUT', /invalid repository "UPPER\/!!bad"/)
  assert.equal(e.exitCode, undefined)
  await rejectsWith(ko.build('./cmd/hello', { dockerrepo: 'x' }), 'KO_INVALID_INPUT', /unknown field `dockerrepo`/)
  await rejectsWith(ko.build('./pkg/lib', { dockerRepo: unreachable, workingDir: app }), 'KO_INVALID_INPUT', /is not a main package/)
  await rejectsWith(ko.build(42, { dockerRepo: unreachable }), 'KO_INVALID_INPUT', /importPaths must be a string or an array of strings/)
  const session = new ko.Session({ dockerRepo: unreachable, workingDir: app })
  await rejectsWith(session.build('./cmd/hello', { dockerRepo: 'y' }), 'KO_INVALID_INPUT', /unknown option dockerRepo/)
  await rejectsWith(session.resolve('config', { selector: 'in in (' }), 'KO_INVALID_INPUT', /invalid selector/)
  await rejectsWith(session.resolve('config', { strict: 'no' }), 'KO_INVALID_INPUT', /invalid options for resolve: invalid type/)
  // Option names in messages are spelled as a Node user writes them.
  await rejectsWith(ko.build('./cmd/hello', { tags: ['bad tag'], dockerRepo: unreachable, workingDir: app }), 'KO_INVALID_INPUT', /^tags: /)
})

test('KO_NOT_FOUND: a missing package; a missing file keeps the OS error as cause', async () => {
  await rejectsWith(ko.build('./cmd/nope', { dockerRepo: unreachable, workingDir: app }), 'KO_NOT_FOUND', /cmd\/nope/)
  const e = await rejectsWith(ko.resolve('nope.yaml', { dockerRepo: unreachable, workingDir: app }), 'KO_NOT_FOUND', /nope\.yaml/)
  assert.ok(e.cause instanceof Error)
  assert.equal(e.cause.errno, 2) // ENOENT
})

test('KO_BUILD: the compiler output is in the message', async () => {
  // push: false: the destination (unreachable) is checked while building, and would fail first.
  const e = await rejectsWith(ko.build('./cmd/broken', { push: false, dockerRepo: unreachable, workingDir: app }), 'KO_BUILD', /go build example\.com\/app\/cmd\/broken/)
  assert.match(e.message, /undefined: thisDoesNotExist/)
})

test('KO_REGISTRY: an unreachable registry, a Docker engine that is not running', async () => {
  await rejectsWith(ko.build('./cmd/hello', { dockerRepo: unreachable, workingDir: app }), 'KO_REGISTRY', /127\.0\.0\.1:1.*Connection refused/s)
  const noEngine = { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' }
  await rejectsWith(ko.build('./cmd/hello', { local: true, workingDir: app, env: noEngine }), 'KO_REGISTRY', /cannot reach the Docker engine at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock/)
})

test('KO_AUTH: a token server that refuses everyone', async (t) => {
  const tokens = http.createServer((req, res) => {
    res.writeHead(401, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }))
  })
  await new Promise((r) => tokens.listen(0, '127.0.0.1', r))
  t.after(() => tokens.close())
  const realm = `http://127.0.0.1:${tokens.address().port}/token`
  const registry = await startRegistry(`auth:\n  silly:\n    realm: ${realm}\n    service: ko-tests\n`)
  t.after(() => registry.stop())
  const env = { ...process.env, DOCKER_CONFIG: path.join(tempDir('docker-config'), 'none') }
  await rejectsWith(ko.build('./cmd/hello', { dockerRepo: `${registry.address}/x`, workingDir: app, env }), 'KO_AUTH', /401/)
})

test('KO_IO: an output in a missing directory, refused before anything is built', async () => {
  const tarball = path.join(tempDir('io'), 'missing', 'image.tar')
  const e = await rejectsWith(ko.build('./cmd/hello', { push: false, dockerRepo: unreachable, workingDir: app, tarball }), 'KO_IO', /missing does not exist; create it first/)
  assert.equal(e.cause.errno, 2)
})

test('KO_CONFIG: a .ko.yaml that does not parse, with the parser error as cause', async () => {
  const dir = tempDir('config')
  fs.writeFileSync(path.join(dir, '.ko.yaml'), 'defaultPlatforms: [unclosed\n')
  const e = await rejectsWith(ko.build('./cmd/hello', { dockerRepo: unreachable, workingDir: app, configPath: dir }), 'KO_CONFIG', new RegExp(`${dir}/.ko.yaml:1:19: invalid YAML`))
  assert.ok(e.cause instanceof Error)
  // A value of the wrong shape is a warning, and an error when KO_STRICT_CONFIG=1 says so.
  fs.writeFileSync(path.join(dir, '.ko.yaml'), 'defaultPlatforms: {a: b}\n')
  const strict = { ...process.env, KO_STRICT_CONFIG: '1' }
  await rejectsWith(ko.build('./cmd/hello', { dockerRepo: unreachable, workingDir: app, configPath: dir, env: strict }), 'KO_CONFIG', /defaultPlatforms/)
  const missingRepo = { ...process.env }
  delete missingRepo.KO_DOCKER_REPO
  await rejectsWith(ko.build('./cmd/hello', { workingDir: app, env: missingRepo }), 'KO_CONFIG', /KO_DOCKER_REPO is not set: set it \(or dockerRepo\).*push false/)
})

test('KO_KUBECTL: a missing kubectl; a failing one with its exit code and output lines', async () => {
  const manifest = path.join(tempDir('kubectl'), 'plain.yaml')
  fs.writeFileSync(manifest, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n')
  const noKubectl = { ...process.env, PATH: path.join(tempDir('empty'), 'bin') }
  const options = { dockerRepo: unreachable, workingDir: app, env: noKubectl }
  const e = await rejectsWith(ko.apply(manifest, options), 'KO_KUBECTL', /kubectl was not found on PATH/)
  assert.ok(e.cause instanceof Error)
  await rejectsWith(ko.create(manifest, { ...options, kubectlArgs: ['--dry-run=client'] }), 'KO_KUBECTL', /kubectl was not found/)
  await rejectsWith(ko.delete(['-f', manifest], { env: noKubectl }), 'KO_KUBECTL', /kubectl was not found/)

  // A kubectl that prints a line on each stream and fails: the lines reach onEvent (and
  // process.stdout/stderr), the status becomes exitCode.
  const bin = tempDir('bin')
  fs.writeFileSync(path.join(bin, 'kubectl'), '#!/bin/sh\necho "out: $*"\necho "err: refused" >&2\nexit 3\n', { mode: 0o755 })
  const events = []
  const failing = ko.delete(['-f', manifest], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    onEvent: (event) => events.push(event),
  })
  const f = await rejectsWith(failing, 'KO_KUBECTL', /kubectl delete exited with status 3/)
  assert.equal(f.exitCode, 3)
  assert.deepEqual(
    events.filter((event) => event.kind === 'kubectlOutput').sort((a, b) => a.stream.localeCompare(b.stream)),
    [
      { kind: 'kubectlOutput', stream: 'stderr', line: 'err: refused' },
      { kind: 'kubectlOutput', stream: 'stdout', line: `out: delete -f ${manifest}` },
    ],
  )
})

test('KO_CANCELLED: an already aborted signal', async () => {
  const e = await rejectsWith(ko.build('./cmd/hello', { dockerRepo: unreachable, workingDir: app, signal: AbortSignal.abort('no') }), 'KO_CANCELLED', /cancelled/)
  assert.equal(e.cause, 'no')
})

test('KO_UNSUPPORTED: loading into kind', async () => {
  await rejectsWith(ko.build('./cmd/hello', { dockerRepo: 'kind.local', workingDir: app }), 'KO_UNSUPPORTED', /dockerRepo "kind.local": loading images into kind.*local\) and then run `kind load docker-image/)
})

test('KO_INTERNAL: a panic in ko becomes a rejection, and node goes on', async () => {
  const native = require('../ko.node')
  const e = await native._panicForTests().catch((err) => err)
  assert.equal(e.code, 'KO_INTERNAL')
  assert.match(e.message, /ko panicked: deliberate panic for the test suite \(this is a bug in ko; please report it\)/)
  // The runtime survives: a real call still works.
  const yaml = await ko.resolveString('a: b\n', { push: false, workingDir: app })
  assert.equal(yaml, 'a: b\n')
})
