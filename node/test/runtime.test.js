// What the package does around each call: the event loop keeps running, AbortSignal cancels a
// real build and leaves no go process behind, calls on one session overlap, and events arrive on
// the JS thread in order, all of them before the call's promise settles.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const ko = require('..')
const { startRegistry, fixtureApp, fakeGo, tempDir } = require('./harness')

let registry
let app

before(async () => {
  registry = await startRegistry()
  app = fixtureApp()
})

after(() => registry?.stop())

test('the event loop keeps ticking during a build', async () => {
  // Each go build first sleeps a second, so the build is long enough to count ticks in.
  const env = { ...process.env, KO_GO_PATH: fakeGo('sleep 1') }
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const started = Date.now()
  try {
    await ko.build('./cmd/hello', { push: false, dockerRepo: '127.0.0.1:1/ticks', workingDir: app, env })
  } finally {
    clearInterval(timer)
  }
  const elapsed = Date.now() - started
  assert.ok(elapsed >= 1000, `the build took ${elapsed} ms`)
  assert.ok(ticks >= 20, `only ${ticks} ticks of 5 ms in ${elapsed} ms`)
})

/** The go toolchain processes (go, compile, asm, link…) running with `gocache`, not zombies. */
function goProcessesOf(gocache) {
  const found = []
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat
    let environ
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8')
    } catch {
      continue // gone meanwhile, or not ours to read
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
    if (state !== 'Z' && environ.split('\0').includes(`GOCACHE=${gocache}`)) found.push(`${pid} ${comm}`)
  }
  return found
}

test('an AbortSignal cancels a real build and no go process is left', async () => {
  // An empty GOCACHE: go compiles the standard library first, so the build runs for a while.
  const gocache = tempDir('gocache')
  const env = { ...process.env, GOCACHE: gocache }
  const controller = new AbortController()
  const events = []
  const build = ko.build('./cmd/hello', {
    push: false,
    dockerRepo: '127.0.0.1:1/cancel',
    workingDir: app,
    env,
    signal: controller.signal,
    onEvent: (event) => events.push(event.kind),
  })
  const deadline = Date.now() + 60000
  while (!goProcessesOf(gocache).some((p) => p.endsWith(' compile'))) {
    assert.ok(Date.now() < deadline, 'go never started compiling')
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.ok(events.includes('buildStarted'))
  const aborted = Date.now()
  controller.abort()
  await assert.rejects(build, (e) => e instanceof ko.KoError && e.code === 'KO_CANCELLED')
  assert.ok(Date.now() - aborted < 5000, 'cancelling took too long')
  // Killed processes may take a moment to become zombies.
  let left = goProcessesOf(gocache)
  for (let i = 0; i < 40 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    left = goProcessesOf(gocache)
  }
  assert.deepEqual(left, [], 'go processes outlived the cancelled build')
  assert.ok(!events.includes('published'))
})

test('two calls on one session run at the same time', async () => {
  // Each go build records when it ran; overlapping spans prove the builds ran concurrently.
  const spans = path.join(tempDir('spans'), 'spans')
  const go = fakeGo(`start=$(date +%s.%N); sleep 1; echo "$start $(date +%s.%N)" >> ${spans}`)
  const session = new ko.Session({ push: false, dockerRepo: '127.0.0.1:1/both', workingDir: app, env: { ...process.env, KO_GO_PATH: go } })
  const [built, yaml] = await Promise.all([
    session.build('./cmd/hello'),
    session.resolveString('image: ko://example.com/app/cmd/second\n'),
  ])
  assert.match(built[0].reference, /^127\.0\.0\.1:1\/both\/hello-/)
  assert.match(yaml, /^image: 127\.0\.0\.1:1\/both\/second-[0-9a-f]{32}@sha256:[0-9a-f]{64}\n$/)
  const [[aStart, aEnd], [bStart, bEnd]] = fs
    .readFileSync(spans, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' ').map(Number))
  assert.ok(aStart < bEnd && bStart < aEnd, 'the two go builds did not overlap')
  await session.finish()
})

test('onEvent sees started, then blobs, then published, all before the promise settles', async () => {
  const events = []
  let settled = false
  const threads = new Set()
  const results = await ko.build('./cmd/hello', {
    dockerRepo: `${registry.address}/events`,
    workingDir: app,
    onEvent: (event) => {
      assert.equal(settled, false, `${event.kind} arrived after the promise settled`)
      threads.add(require('node:worker_threads').threadId)
      events.push(event)
    },
  })
  settled = true
  const kinds = events.map((e) => e.kind)
  const started = kinds.indexOf('buildStarted')
  const blob = kinds.findIndex((k) => k === 'blobUploaded' || k === 'blobExisting' || k === 'blobMounted')
  const published = kinds.indexOf('published')
  assert.ok(started >= 0 && blob > started && published > blob, kinds.join(' '))
  assert.equal(published, kinds.length - 1, 'published is the last event')
  assert.deepEqual(events[published], { kind: 'published', importPath: 'example.com/app/cmd/hello', reference: results[0].reference })
  assert.deepEqual(events[started], { kind: 'buildStarted', importPath: 'example.com/app/cmd/hello', platform: 'linux/amd64' })
  const layer = events.find((e) => e.kind === 'layerReady' && e.layer === 'binary')
  assert.match(layer.digest, /^sha256:[0-9a-f]{64}$/)
  assert.equal(typeof layer.size, 'number')
  assert.ok(kinds.includes('blobUploaded'), 'a fresh repository gets uploads')
  assert.deepEqual([...threads], [0], 'events run on the main JS thread')
  // Blob progress for each upload ends with sent === total.
  const progress = events.filter((e) => e.kind === 'blobProgress')
  for (const uploaded of events.filter((e) => e.kind === 'blobUploaded' && e.size > 0)) {
    const last = progress.filter((p) => p.digest === uploaded.digest).at(-1)
    if (last) assert.equal(last.sent, last.total)
  }
})

test('a throwing onEvent is an uncaught exception; the call goes on', async () => {
  const caught = []
  const listeners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const record = (e) => caught.push(e)
  process.on('uncaughtException', record)
  try {
    const yaml = await ko.resolveString('image: ko://example.com/app/cmd/second\n', {
      push: false,
      dockerRepo: '127.0.0.1:1/throw',
      workingDir: app,
      onEvent: (event) => {
        if (event.kind === 'published') throw new Error('listener bug')
      },
    })
    assert.match(yaml, /second-/)
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('uncaughtException', record)
    for (const l of listeners) process.on('uncaughtException', l)
  }
  assert.deepEqual(caught.map((e) => e.message), ['listener bug'])
})
