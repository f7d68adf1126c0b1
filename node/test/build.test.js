// build / publish against the real registry: skopeo finds what they return; local outputs are
// written when the session finishes.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const ko = require('..')
const { startRegistry, fixtureApp, tempDir, skopeoInspect } = require('./harness')

let registry
let app

before(async () => {
  registry = await startRegistry()
  app = fixtureApp()
})

after(() => registry?.stop())

test('publish returns one result per argument, in order, and the registry has them', async () => {
  const repo = `${registry.address}/build`
  const results = await ko.publish(['./cmd/second', 'example.com/app/cmd/hello', 'ko://example.com/app/cmd/second'], {
    dockerRepo: repo,
    workingDir: app,
    tags: ['v1'],
    imageLabels: { team: 'node' },
  })
  assert.equal(results.length, 3)
  assert.deepEqual(results[2], results[0])
  assert.equal(results[0].importPath, 'example.com/app/cmd/second')
  assert.equal(results[1].importPath, 'example.com/app/cmd/hello')
  assert.deepEqual(results[0].children, [])
  for (const { reference } of results.slice(0, 2)) {
    const [tagged, digest] = reference.split('@') // one tag other than latest: repo:v1@sha256:…
    const repository = tagged.slice(0, tagged.lastIndexOf(':'))
    assert.equal(tagged, `${repository}:v1`)
    assert.ok(repository.startsWith(`${repo}/`))
    const info = skopeoInspect(`${repository}@${digest}`)
    assert.equal(info.Digest, digest)
    assert.deepEqual(info.Labels, { team: 'node' })
    assert.equal(skopeoInspect(tagged).Digest, digest)
  }
})

test('a session writes its OCI layout and image refs; finish closes it', async () => {
  const out = tempDir('outputs')
  const layout = path.join(out, 'layout')
  const refs = path.join(out, 'refs.txt')
  const session = new ko.Session({ push: false, workingDir: app, ociLayoutPath: layout, imageRefs: refs, bare: true })
  const [published] = await session.build('./cmd/hello')
  assert.ok(published.reference.startsWith(`${layout}@sha256:`), published.reference)
  assert.ok(fs.existsSync(path.join(layout, 'index.json')))
  assert.equal(fs.existsSync(refs), false, 'image refs are written when the session finishes')
  await session.finish()
  assert.equal(fs.readFileSync(refs, 'utf8'), `${published.reference}\n`)
  await session.finish() // a second finish does nothing
  await assert.rejects(session.build('./cmd/hello'), { code: 'KO_INVALID_INPUT', message: /has finished/ })
})
