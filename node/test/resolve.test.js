// resolve / resolveString against the real Go fixture and registry: the output is the CLI's, byte
// for byte, and skopeo finds every reference it holds.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ko = require('..')
const { startRegistry, fixtureApp, koCli, skopeoInspect } = require('./harness')

let registry
let app

before(async () => {
  registry = await startRegistry()
  app = fixtureApp()
})

after(() => registry?.stop())

test('resolve is byte-equal to the CLI and its references are in the registry', async () => {
  const repo = `${registry.address}/resolve`
  const yaml = await ko.resolve('config', { dockerRepo: repo, workingDir: app })
  const cli = execFileSync(koCli(), ['resolve', '-f', 'config'], {
    cwd: app,
    env: { ...process.env, KO_DOCKER_REPO: repo },
  })
  assert.ok(Buffer.from(yaml).equals(cli), 'resolve differs from `ko resolve -f config`')
  assert.match(yaml, /ko:\/\/example\.com\/app\/cmd\/hello is not replaced/) // block scalar kept
  const references = [...yaml.matchAll(/(127\.0\.0\.1:\d+\/resolve\/[a-z-]+-[0-9a-f]{32}@sha256:[0-9a-f]{64})/g)].map((m) => m[1])
  assert.ok(references.length >= 2, yaml)
  for (const reference of new Set(references)) {
    assert.equal(skopeoInspect(reference).Digest, reference.split('@')[1])
  }
})

test('paths: one string, a list, absolute; recursive walks directories', async () => {
  const common = { dockerRepo: '127.0.0.1:1/unused', workingDir: app, push: false }
  const one = await ko.resolve('config/deployment.yaml', common)
  assert.equal(await ko.resolve(['config/deployment.yaml'], common), one)
  assert.equal(await ko.resolve([path.join(app, 'config', 'deployment.yaml')], common), one)
  const flat = await ko.resolve('config', common)
  const deep = await ko.resolve('config', { ...common, recursive: true })
  assert.ok(deep.length > flat.length)
  const nested = fs.readFileSync(path.join(app, 'config', 'more', 'pod.yaml'), 'utf8').split('\n')[0]
  assert.ok(deep.includes(nested))
})

test('resolveString keeps the text and applies the selector', async () => {
  const text =
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {app: a}\n' +
    'spec:\n  containers:\n  - image: ko://example.com/app/cmd/second  # kept comment\n' +
    '---\n' +
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  labels: {app: b}\n' +
    'spec:\n  containers:\n  - image: ko://example.com/app/cmd/hello\n'
  const options = { dockerRepo: '127.0.0.1:1/unused', workingDir: app, push: false }
  const out = await ko.resolveString(text, { ...options, selector: 'app=a' })
  assert.match(out, /name: a/)
  assert.doesNotMatch(out, /name: b/)
  assert.match(out, /127\.0\.0\.1:1\/unused\/second-[0-9a-f]{32}@sha256:[0-9a-f]{64} {2}# kept comment\n/)
  const unchanged = 'a: b  # no references\n'
  assert.equal(await ko.resolveString(unchanged, options), unchanged)
})
