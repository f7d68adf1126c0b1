// What the node suite shares: a real `docker-registry` on a free loopback port (stopped by pid),
// a private copy of the Go fixture module (tests/fixtures/app), the `ko` CLI built by cargo, a
// `go` wrapper that makes `go build` slow on purpose, and skopeo. The suite drives the real
// tools, as the Rust integration tests and the Python suite do (`bash .ci/run` installs them).
'use strict'

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..')
const FIXTURE_APP = path.join(REPO, 'tests', 'fixtures', 'app')

function which(tool) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, tool)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${tool} is not installed; the node suite needs go, docker-registry and skopeo (bash .ci/run installs them)`)
}

function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ko-node-${name}-`))
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function answers(address) {
  return new Promise((resolve) => {
    const req = http.get(`http://${address}/v2/`, { timeout: 1000 }, (res) => {
      res.resume()
      resolve(true) // any answer (401 with auth configured) means it is up
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
  })
}

/** A running `docker-registry serve` on 127.0.0.1 with filesystem storage; `extraConfig` is YAML. */
async function startRegistry(extraConfig = '') {
  const binary = which('docker-registry')
  const root = tempDir('registry')
  let lastLog = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const config = path.join(root, `config-${port}.yml`)
    fs.writeFileSync(
      config,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(root, 'data')}\n` +
        `http:\n  addr: 127.0.0.1:${port}\n  secret: ko-node-tests\n${extraConfig}`,
    )
    const logPath = path.join(root, `registry-${port}.log`)
    const log = fs.openSync(logPath, 'w')
    const child = spawn(binary, ['serve', config], { stdio: ['ignore', log, log] })
    fs.closeSync(log)
    const address = `127.0.0.1:${port}`
    const deadline = Date.now() + 20000
    while (Date.now() < deadline && child.exitCode === null) {
      if (await answers(address)) {
        return {
          address,
          stop() {
            if (child.exitCode === null) process.kill(child.pid, 'SIGKILL')
            fs.rmSync(root, { recursive: true, force: true })
          },
        }
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    if (child.exitCode === null) process.kill(child.pid, 'SIGKILL')
    lastLog = fs.readFileSync(logPath, 'utf8')
  }
  throw new Error(`docker-registry did not come up: ${lastLog}`)
}

/** A private copy of the Go fixture module `example.com/app` (ko runs `go` in it). */
function fixtureApp() {
  which('go')
  const dest = path.join(tempDir('fixture'), 'app')
  fs.cpSync(FIXTURE_APP, dest, { recursive: true, verbatimSymlinks: true })
  return dest
}

/** The `ko` binary built by `cargo build -p ko-cli` (or named by KO_CLI). */
function koCli() {
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target')
  const binary = process.env.KO_CLI || path.join(target, 'debug', 'ko')
  if (!fs.existsSync(binary)) throw new Error(`${binary} does not exist; run \`cargo build -p ko-cli\` first (or set KO_CLI)`)
  return binary
}

/** A `go` for KO_GO_PATH whose `go build` first runs `buildAction` (shell); other subcommands are the real go. */
function fakeGo(buildAction) {
  const realGo = which('go')
  const script = path.join(tempDir('go'), 'go')
  fs.writeFileSync(script, `#!/bin/sh\nif [ "$1" = build ]; then\n${buildAction}\nfi\nexec ${realGo} "$@"\n`, { mode: 0o755 })
  return script
}

/** `skopeo inspect` of a registry reference, as JSON. */
function skopeoInspect(reference) {
  const out = execFileSync(which('skopeo'), ['inspect', '--tls-verify=false', `docker://${reference}`], {
    encoding: 'utf8',
    timeout: 60000,
  })
  return JSON.parse(out)
}

module.exports = { REPO, which, tempDir, freePort, startRegistry, fixtureApp, koCli, fakeGo, skopeoInspect }
