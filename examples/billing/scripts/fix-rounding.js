#!/usr/bin/env node
// The edit the offline example's scripted model has Claude Code make (examples/model/fix-rounding.json): sum
// exactly, round once at the end, half to even. With a real model, Claude Code finds and writes the fix itself.
'use strict';
const fs = require('node:fs');

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
