#!/usr/bin/env node
// A stand-in agent for the offline demo (agent.kind: command): it reads its prompt like a real agent would,
// then makes the fix a careful colleague would make. A real spec would use agent.kind claude-code or codex.
'use strict';
const fs = require('node:fs');

const prompt = fs.readFileSync(process.env.NIGHTSHIFT_PROMPT_FILE, 'utf8');
console.log(`iteration ${process.env.NIGHTSHIFT_ITERATION}; task: ${prompt.split('\n')[0].replace(/^# /, '')}`);
if (process.env.NIGHTSHIFT_FEEDBACK) console.log(`feedback from the pipeline:\n${process.env.NIGHTSHIFT_FEEDBACK}`);

const file = 'src/invoice.js';
const source = fs.readFileSync(file, 'utf8');
const fixed = source
  .replace(
    /  let total = 0;\n  for \(const line of lines\) \{\n    total \+= Math\.round\(line\.quantity \* line\.unitPrice \* unit\);\n  \}\n  return total;/,
    [
      '  let total = 0;',
      '  for (const line of lines) {',
      '    total += line.quantity * line.unitPrice * unit;',
      '  }',
      '  return roundHalfEven(total);',
    ].join('\n'),
  )
  .replace(
    /\nmodule\.exports/,
    [
      '',
      '/** Round to an integer, ties to even; binary floating-point noise below 1e-9 is ignored. */',
      'function roundHalfEven(x) {',
      '  const value = Number(x.toFixed(9));',
      '  const floor = Math.floor(value);',
      '  const diff = value - floor;',
      '  if (diff > 0.5) return floor + 1;',
      '  if (diff < 0.5) return floor;',
      '  return floor % 2 === 0 ? floor : floor + 1;',
      '}',
      '',
      'module.exports',
    ].join('\n'),
  );
if (fixed === source) {
  console.error('nothing to fix: src/invoice.js does not look as expected');
  process.exit(1);
}
fs.writeFileSync(file, fixed);
console.log(`rewrote ${file}: sum exactly, round once at the end (half to even)`);
