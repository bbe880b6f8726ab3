'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { invoiceTotal } = require('../src/invoice');

test('whole amounts add up', () => {
  assert.strictEqual(invoiceTotal([{ quantity: 2, unitPrice: 10 }], 'EUR'), 2000);
});

test('rounds once at the end, half to even', () => {
  // 3 × 0.335 EUR = 100.5 cents: rounding each line gives 3 × 34 = 102, rounding the sum half-even gives 100.
  const lines = [
    { quantity: 1, unitPrice: 0.335 },
    { quantity: 1, unitPrice: 0.335 },
    { quantity: 1, unitPrice: 0.335 },
  ];
  assert.strictEqual(invoiceTotal(lines, 'EUR'), 100);
});
