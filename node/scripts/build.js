#!/usr/bin/env node
// Builds the addon from source with cargo and copies it to ko.node beside index.js; no prebuilt
// binary is downloaded. `npm install` runs it (release); `node scripts/build.js --debug` is the
// quick build the test script uses.
//
// `--dts` also regenerates index.d.ts: cargo builds the crate with NAPI_TYPE_DEF_TMP_FOLDER set,
// so napi-derive writes the type definitions of every #[napi] item there, and @napi-rs/cli's
// generateTypeDef (a dev dependency) renders them after the hand-written types/header.d.ts.
// `--check-dts` does the same but only fails (exit 1) when index.d.ts differs.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const here = path.resolve(__dirname, '..')
const args = new Set(process.argv.slice(2))
const release = !args.has('--debug')
const dts = args.has('--dts') || args.has('--check-dts')

function cargoBuild(env) {
  const cargo = process.env.CARGO || 'cargo'
  const cargoArgs = ['build', '-p', 'ko-node', '--message-format=json-render-diagnostics']
  if (release) cargoArgs.push('--release')
  const run = spawnSync(cargo, cargoArgs, {
    cwd: here,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  })
  if (run.error) {
    throw new Error(`cannot run ${cargo} (the ko addon is built from source; install Rust): ${run.error.message}`)
  }
  if (run.status !== 0) process.exit(run.status ?? 1)
  // The last artifact of ko-node's cdylib names the built library, whatever the target dir.
  let library
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason === 'compiler-artifact' && msg.target.name === 'ko_node' && msg.target.kind.includes('cdylib')) {
      library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
    }
  }
  if (!library) throw new Error('cargo did not report the ko_node library')
  return library
}

async function main() {
  if (!dts) {
    const library = cargoBuild(process.env)
    // Copy to a temporary name and rename, so a running node never maps a half-written file.
    const target = path.join(here, 'ko.node')
    const partial = `${target}.${process.pid}.tmp`
    fs.copyFileSync(library, partial)
    fs.renameSync(partial, target)
    return
  }
  const typeDefDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ko-node-typedefs-'))
  try {
    cargoBuild({ ...process.env, NAPI_TYPE_DEF_TMP_FOLDER: typeDefDir, NAPI_FORCE_BUILD_KO_NODE: String(Date.now()) })
    const { generateTypeDef } = require('@napi-rs/cli')
    const { dts: text } = await generateTypeDef({ typeDefDir, dtsHeaderFile: 'types/header.d.ts', cwd: here })
    const file = path.join(here, 'index.d.ts')
    if (args.has('--check-dts')) {
      const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
      if (current !== text) {
        console.error('index.d.ts is stale: run `npm run types` in node/ and commit the result')
        process.exit(1)
      }
      console.error('index.d.ts is up to date')
    } else {
      fs.writeFileSync(file, text)
    }
  } finally {
    fs.rmSync(typeDefDir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e)
  process.exit(1)
})
