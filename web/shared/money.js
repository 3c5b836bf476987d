// Money as Stripe takes it, in integers only: an amount is an integer of the currency's minor
// unit (`amount_minor`), shown by placing the decimal point, never by dividing. Points are
// decimal strings from the API and are shown as they come.

/** Currencies without decimals: 1000 JPY is `1000`. */
export const ZERO_DECIMAL = ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"];
/** Currencies with three decimals, the last one 0: 5.120 KWD is `5120`. */
export const THREE_DECIMAL = ["bhd", "jod", "kwd", "omr", "tnd"];
/** Two decimals in the API, but only whole units are charged: 10.00 ISK is `1000`. */
export const WHOLE_UNITS = ["isk", "ugx"];
/** Stripe's minimum charge in minor units, for the currencies the page explains. */
export const MINIMUM_MINOR = { usd: 50, eur: 50, gbp: 30, jpy: 50, huf: 17500, kwd: 500 };

/**
 * Decimal places of `currency`'s minor unit.
 * @param {string} currency
 */
export function exponent(currency) {
  const c = currency.toLowerCase();
  if (ZERO_DECIMAL.includes(c)) return 0;
  if (THREE_DECIMAL.includes(c)) return 3;
  return 2;
}

/**
 * `1000, "usd"` is `"10.00"`; `5120, "kwd"` is `"5.120"`; `1000, "jpy"` is `"1000"`.
 * @param {number} amountMinor an integer
 * @param {string} currency
 */
export function majorOf(amountMinor, currency) {
  const places = exponent(currency);
  const digits = String(Math.abs(amountMinor)).padStart(places + 1, "0");
  const sign = amountMinor < 0 ? "-" : "";
  if (places === 0) return sign + digits;
  return `${sign}${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

/**
 * `"10.00 USD"`.
 * @param {{amount_minor: number, currency: string}} money
 */
export function formatMoney(money) {
  return `${majorOf(money.amount_minor, money.currency)} ${money.currency.toUpperCase()}`;
}

/**
 * The minor units of an amount typed in major units, by its text: `"5.12", "kwd"` is `5120`.
 * Refuses what Stripe would refuse, saying why, before the API is asked (which checks again).
 * @param {string} text
 * @param {string} currency
 * @returns {{ok: true, minor: number} | {ok: false, why: string}}
 */
export function minorOf(text, currency) {
  const c = currency.toLowerCase();
  const places = exponent(c);
  const match = /^(\d{1,12})(?:\.(\d+))?$/.exec(text.trim());
  if (!match) return { ok: false, why: "write the amount as digits, with a point for decimals" };
  const fraction = match[2] || "";
  if (fraction.length > places) {
    const how = places === 0 ? "no decimals" : `at most ${places} decimals`;
    return { ok: false, why: `${c.toUpperCase()} takes ${how}` };
  }
  const minor = Number(match[1] + fraction.padEnd(places, "0"));
  if (!Number.isSafeInteger(minor)) return { ok: false, why: "too large" };
  if (places === 3 && minor % 10 !== 0) return { ok: false, why: `${c.toUpperCase()} amounts end in 0 (5.120, not 5.125)` };
  if (WHOLE_UNITS.includes(c) && minor % 100 !== 0) return { ok: false, why: `${c.toUpperCase()} is charged in whole units` };
  const minimum = /** @type {Record<string, number>} */ (MINIMUM_MINOR)[c];
  if (minimum !== undefined && minor < minimum) {
    return { ok: false, why: `Stripe's minimum charge in ${c.toUpperCase()} is ${majorOf(minimum, c)}` };
  }
  return { ok: true, minor };
}
