// Example Java agent: acknowledges the orders placed through PythonQuery.py/PlaceOrder.
//
// It watches the M topic "orders". For every new order it adds a status entry to the topic
// "order-status-java"; every minute it prints how many orders there are; a message
// (POST /flow/agent/$WID$-JavaAgent) answers with the counts.
//
//     curl -X POST -H "x-api-key: $KEY" -d '{}' http://localhost:8080/flow/agent/<WID>-JavaAgent
import coflows.Agent;
import coflows.FPKG;
import coflows.M;

import java.time.ZonedDateTime;
import java.util.LinkedHashMap;
import java.util.Map;

public class JavaAgent {
    /// Once at start, with every order already in the topic.
    public static void Load(Object[] orders) {
        System.out.println((orders == null ? 0 : orders.length) + " orders at start");
    }

    /// A new order (a Map): acknowledge it in another topic.
    public static void Add(String id, Object data) {
        Object item = data instanceof Map ? ((Map<?, ?>) data).get("item") : null;
        Map<String, Object> status = new LinkedHashMap<>();
        status.put("order", id);
        status.put("item", item);
        status.put("status", "received");
        status.put("by", "Java");
        M.Base("order-status-java").add(status);
    }

    public static void Exchange(String id, Object order) {
        System.out.println("order " + id + " is now " + Agent.json(order));
    }

    public static void Remove(String id, Object order) {
        System.out.println("order " + id + " was removed");
    }

    /// A message, as JSON text (CoFlows). At start it is {"Function": "Main", ...}.
    public static Object Body(Object data) {
        Object message = Agent.parse(data);
        if (message instanceof Map && "Main".equals(((Map<?, ?>) message).get("Function"))) return "started";
        Map<String, Object> counts = new LinkedHashMap<>();
        counts.put("orders", M.Base("orders").count());
        counts.put("acknowledged", M.Base("order-status-java").count());
        return counts;
    }

    public static void Job(ZonedDateTime timestamp, String executionType) {
        System.out.println(timestamp.toLocalTime() + " (" + executionType + "): " + M.Base("orders").count() + " orders");
    }

    public static FPKG pkg() {
        return new FPKG(
            "$WID$-JavaAgent",    // ID
            "$WID$",              // WorkflowID
            "Java Agent",         // Name
            "Acknowledges orders placed through PythonQuery.py/PlaceOrder (Java)",  // Description
            "orders",             // MID: the M topic it watches
            JavaAgent::Load,
            JavaAgent::Add,
            JavaAgent::Exchange,
            JavaAgent::Remove,
            JavaAgent::Body,
            "0 * * ? * *",        // ScheduleCommand: second 0 of every minute
            JavaAgent::Job);
    }
}
