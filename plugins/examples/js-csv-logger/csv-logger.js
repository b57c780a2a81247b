// csv-logger: a trainbox plugin in JavaScript (ComponentizeJS / StarlingMonkey).
// Subscribes to on_log and appends each log entry to `logs.csv` in its own
// directory (the preopened "."). The header is `step` followed by the keys of
// the first entry; later entries are written in that column order (missing
// keys stay empty, extra keys are dropped).
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

const NAME = 'csv-logger';
const VERSION = '0.1.0';
const API_VERSION = '0.2.0';

let fileName = 'logs.csv';
let columns = null; // keys of the first entry
let out = null;     // wasi:io output-stream appending to the file
const encoder = new TextEncoder();

function openAppend(name) {
  const dirs = getDirectories();
  const entry = dirs.find(([, path]) => path === '.') ?? dirs[0];
  if (!entry) throw `no preopened directory`;
  const dir = entry[0];
  const file = dir.openAt(
    { symlinkFollow: false },
    name,
    { create: true },
    { write: true },
  );
  return file.appendViaStream();
}

function writeText(text) {
  const bytes = encoder.encode(text);
  // blocking-write-and-flush takes at most 4096 bytes per call.
  for (let i = 0; i < bytes.length; i += 4096) {
    out.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
}

function cell(value) {
  if (value === undefined) return '';
  let s;
  switch (value.tag) {
    case 'float': s = Number.isFinite(value.val) ? String(value.val) : String(value.val).toLowerCase(); break;
    case 'int': s = value.val.toString(); break; // s64 arrives as a BigInt
    case 'flag': s = value.val ? 'true' : 'false'; break;
    default: s = String(value.val);
  }
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const plugin = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      apiVersion: API_VERSION,
      events: ['log'],
      stateful: false,
      capabilities: [],
    };
  },

  configure(args, config) {
    for (const [key, value] of config) {
      if (key === 'file') fileName = value;
      else throw `unknown key "${key}"; known keys: file`;
    }
    try {
      out = openAppend(fileName);
    } catch (e) {
      throw `opening ${fileName}: ${e?.payload ?? e}`;
    }
  },

  onEvent(event, state, control, payload) {
    if (event !== 'log' || out === null) return control;
    const values = new Map(payload.map((e) => [e.key, e.value]));
    if (columns === null) {
      columns = payload.map((e) => e.key).filter((k) => k !== 'step');
      writeText(['step', ...columns].join(',') + '\n');
    }
    const row = [state.globalStep.toString(), ...columns.map((k) => cell(values.get(k)))];
    writeText(row.join(',') + '\n');
    return control;
  },

  saveState() {
    return '{"args": {}, "attributes": {}}';
  },

  loadState(_state) {},

  // Called once when the run is over (outcome: {tag: 'completed'} or
  // {tag: 'aborted', val: message}). Rows are flushed as they are written,
  // so there is nothing left to flush; just release the stream.
  finish(_outcome) {
    out = null;
  },
};
