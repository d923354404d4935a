/// <info version="1.0.0">
///   <title>JavaScript example query</title>
///   <description>A JavaScript query run in-process by V8: typed and untyped arguments, objects, errors, promises and a call into Python.</description>
/// </info>

// Every top-level function (or `let`/`const` holding one) is a URL:
//   /flow/query/<workflow>/JsQuery.js/Add?p[0]=1&p[1]=2   → 3

/**
 * Adds two numbers.
 * @param {number} x - first number
 * @param {number} y - second number
 * @returns {number} x + y
 */
let Add = function (x, y) {
  return x + y
}

/// <api name="Concat">
///   <description>Undeclared parameters get strings, as in CoFlows: Concat?p[0]=1&amp;p[1]=2 gives "12".</description>
/// </api>
let Concat = function (a, b) {
  return a + b
}

/**
 * A structured result: objects, arrays and Dates come back as JSON (try Prices.csv).
 * @param {integer} [days=3] - how many rows
 */
function Prices(days = 3) {
  const start = Date.UTC(2024, 0, 1)
  const rows = []
  for (let i = 0; i < days; i++) {
    rows.push({ date: new Date(start + i * 86400000), price: 100.5 + i, volume: 1000 * (i + 1) })
  }
  return rows
}

/**
 * Throws, to show how errors come back: HTTP 500 with the error's type and message
 * (and, for admins, the stack, which points into this file).
 * @param {string} [message]
 */
function Fail(message = 'something went wrong') {
  throw new RangeError(message)
}

/**
 * Calls a Python function of this workflow (PythonQuery.py's Hello) and awaits it.
 * `coflows.call(query, function, ...args)` reaches any registered function, in any language.
 * @param {string} [name=JS] - who to greet
 */
async function HelloFromPython(name = 'JS') {
  const greeting = await coflows.call('PythonQuery.py', 'Hello', name)
  console.log('PythonQuery.py/Hello answered', greeting) // → the server log, tagged with this function
  return { from: 'JavaScript', python: greeting }
}

// A top-level value is served as a zero-argument function returning it.
const Version = '1.0.0'
