#!/usr/bin/env node
// A `solc` command line built on solc-js, the official WebAssembly build of the
// Solidity compiler from npm. It answers the three invocations this project's
// tools make, so that no native compiler has to be downloaded:
//
//   solc --version                                   (py-solc-x, ape-solidity)
//   solc --standard-json [--base-path P] [--include-path P]... < input.json
//   solc [prefix=path]... FILE... --combined-json FIELDS [--allow-paths P] ...  (Slither)
//
// The combined-json mode is translated to standard JSON and back, because
// solc-js's own CLI does not offer it.
"use strict";

const fs = require("fs");
const path = require("path");

const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
const solc = require(require.resolve("solc", { paths: [PROJECT_ROOT, process.cwd()] }));

const COMBINED_TO_STANDARD = {
  abi: ["abi"],
  bin: ["evm.bytecode.object"],
  "bin-runtime": ["evm.deployedBytecode.object"],
  srcmap: ["evm.bytecode.sourceMap"],
  "srcmap-runtime": ["evm.deployedBytecode.sourceMap"],
  userdoc: ["userdoc"],
  devdoc: ["devdoc"],
  hashes: ["evm.methodIdentifiers"],
  metadata: ["metadata"],
  "storage-layout": ["storageLayout"],
  opcodes: ["evm.bytecode.opcodes"],
  asm: ["evm.legacyAssembly"],
};

class UsageError extends Error {}

function parseArguments(argv) {
  const options = {
    mode: null,
    basePath: null,
    includePaths: [],
    allowPaths: [],
    combinedFields: [],
    remappings: [],
    files: [],
    optimize: false,
    optimizeRuns: null,
    evmVersion: null,
    viaIR: false,
  };
  // Flags that take a value; anything else that starts with "--" is a switch.
  const takesValue = new Set([
    "--base-path",
    "--include-path",
    "--allow-paths",
    "--combined-json",
    "--optimize-runs",
    "--evm-version",
    "--output-dir",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let flag = arg;
    let value = null;
    if (arg.startsWith("--") && arg.includes("=")) {
      flag = arg.slice(0, arg.indexOf("="));
      value = arg.slice(arg.indexOf("=") + 1);
    } else if (takesValue.has(arg)) {
      if (i + 1 >= argv.length) throw new UsageError(`option ${arg} needs a value`);
      value = argv[++i];
    }
    switch (flag) {
      case "--version":
        options.mode = "version";
        break;
      case "--help":
        options.mode = "help";
        break;
      case "--standard-json":
        options.mode = "standard-json";
        break;
      case "--combined-json":
        options.mode = "combined-json";
        options.combinedFields = value.split(",").filter(Boolean);
        break;
      case "--base-path":
        options.basePath = value;
        break;
      case "--include-path":
        options.includePaths.push(value);
        break;
      case "--allow-paths":
        options.allowPaths.push(...value.split(",").filter(Boolean));
        break;
      case "--optimize":
        options.optimize = true;
        break;
      case "--optimize-runs":
        options.optimizeRuns = Number.parseInt(value, 10);
        break;
      case "--evm-version":
        options.evmVersion = value;
        break;
      case "--via-ir":
        options.viaIR = true;
        break;
      case "--output-dir":
      case "--no-color":
      case "--pretty-json":
        break;
      case "-":
        break;
      default:
        if (arg.startsWith("--")) throw new UsageError(`unsupported option ${arg}`);
        if (!arg.startsWith("-") && arg.includes("=")) options.remappings.push(arg);
        else options.files.push(arg);
    }
  }
  return options;
}

function readStdin() {
  return fs.readFileSync(0, "utf8");
}

// Resolve an import the way native solc does: relative to the base path first,
// then to each include path, then as given.
function makeImportCallback(options) {
  const roots = [options.basePath || process.cwd(), ...options.includePaths];
  return function findImport(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, "utf8") };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function compileStandard(inputText, options) {
  return solc.compile(inputText, { import: makeImportCallback(options) });
}

function versionText() {
  return `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`;
}

function combinedJson(options) {
  if (options.files.length === 0) throw new UsageError("--combined-json needs at least one source file");
  const fields = options.combinedFields.filter((field) => field !== "ast");
  const unknown = fields.filter((field) => !(field in COMBINED_TO_STANDARD));
  if (unknown.length) throw new UsageError(`unsupported --combined-json field(s): ${unknown.join(", ")}`);

  const sources = {};
  for (const file of options.files) {
    sources[file] = { content: fs.readFileSync(file, "utf8") };
  }
  const settings = {
    remappings: options.remappings,
    optimizer: { enabled: options.optimize, runs: options.optimizeRuns ?? 200 },
    outputSelection: {
      "*": {
        "*": fields.flatMap((field) => COMBINED_TO_STANDARD[field]),
        "": options.combinedFields.includes("ast") ? ["ast"] : [],
      },
    },
  };
  if (options.evmVersion) settings.evmVersion = options.evmVersion;
  if (options.viaIR) settings.viaIR = true;

  const input = { language: "Solidity", sources, settings };
  const output = JSON.parse(compileStandard(JSON.stringify(input), options));
  const errors = (output.errors || []).filter((error) => error.severity === "error");
  for (const message of output.errors || []) process.stderr.write(`${message.formattedMessage}\n`);
  if (errors.length) return { exitCode: 1, text: "" };

  const contracts = {};
  for (const [sourceName, byName] of Object.entries(output.contracts || {})) {
    for (const [contractName, compiled] of Object.entries(byName)) {
      const entry = {};
      for (const field of fields) {
        const [selector] = COMBINED_TO_STANDARD[field];
        const value = selector.split(".").reduce((node, key) => (node == null ? node : node[key]), compiled);
        entry[field] = value ?? "";
      }
      contracts[`${sourceName}:${contractName}`] = entry;
    }
  }
  const combinedSources = {};
  const sourceList = Object.keys(output.sources || {}).sort(
    (a, b) => output.sources[a].id - output.sources[b].id,
  );
  for (const sourceName of sourceList) {
    const entry = { id: output.sources[sourceName].id };
    if (options.combinedFields.includes("ast")) entry.AST = output.sources[sourceName].ast;
    combinedSources[sourceName] = entry;
  }
  const result = { contracts, sourceList, sources: combinedSources, version: solc.version() };
  return { exitCode: 0, text: JSON.stringify(result) };
}

function main() {
  let options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  try {
    if (options.mode === "version") {
      process.stdout.write(versionText());
      return 0;
    }
    if (options.mode === "help") {
      process.stdout.write(versionText());
      process.stdout.write("Modes: --version, --standard-json, --combined-json FIELDS (solc-js shim)\n");
      return 0;
    }
    if (options.mode === "standard-json") {
      process.stdout.write(compileStandard(readStdin(), options));
      return 0;
    }
    if (options.mode === "combined-json") {
      const { exitCode, text } = combinedJson(options);
      process.stdout.write(text);
      return exitCode;
    }
    process.stderr.write("no mode given: use --version, --standard-json or --combined-json\n");
    return 2;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = main();
