'use strict';

/** Minor units per major unit, by currency. */
const MINOR_UNITS = { EUR: 100, USD: 100, JPY: 1, KWD: 1000 };

/**
 * Total of an invoice in the currency's minor units (cents, fils, …).
 * Each line is { quantity, unitPrice } with unitPrice in major units.
 */
function invoiceTotal(lines, currency) {
  const unit = MINOR_UNITS[currency];
  if (!unit) throw new Error(`unknown currency ${currency}`);
  let total = 0;
  for (const line of lines) {
    total += Math.round(line.quantity * line.unitPrice * unit);
  }
  return total;
}

module.exports = { invoiceTotal };
