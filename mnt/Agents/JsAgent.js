/**
 * Example JavaScript agent: acknowledges the orders placed through `PythonQuery.py/PlaceOrder`.
 *
 * It watches the M topic "orders". For every new order it adds a status entry to the topic
 * "order-status-js"; every minute it logs how many orders there are; a message
 * (`POST /flow/agent/$WID$-JsAgent`) answers with the counts.
 *
 *     curl -X POST -H "x-api-key: $KEY" -d '{}' http://localhost:8080/flow/agent/<WID>-JsAgent
 *
 * M calls return Promises: `await` them (hooks may be async; the runtime awaits them).
 */

function Load(orders) {
  console.log(`${orders.length} orders at start`)
}

async function Add(id, order) {
  await M.Base("order-status-js").Add({order: id, item: order.item, status: "received by JavaScript"})
}

function Exchange(id, order) {
  console.log(`order ${id} is now`, order)
}

function Remove(id, order) {
  console.log(`order ${id} was removed`)
}

// A message: the request's JSON body, parsed. At start it is {Function: "Main", Data: "Initial Execution"}.
async function Body(message) {
  if (message && message.Function === "Main") return "started"
  return {orders: await M.Base("orders").Count(), acknowledged: await M.Base("order-status-js").Count()}
}

async function Job(timestamp, executionType) {
  console.log(`${timestamp.toISOString()} (${executionType}): ${await M.Base("orders").Count()} orders`)
}

function pkg() {
  return {
    ID: "$WID$-JsAgent",
    WorkflowID: "$WID$",
    Name: "JavaScript Agent",
    Description: "Acknowledges orders placed through PythonQuery.py/PlaceOrder in order-status-js",
    MID: "orders",                // the M topic it watches
    Load: Load,
    Add: Add,
    Exchange: Exchange,
    Remove: Remove,
    Body: Body,
    ScheduleCommand: "0 * * ? * *",  // second 0 of every minute
    Job: Job,
  }
}
