// Example C# agent: acknowledges the orders placed through PythonQuery.py/PlaceOrder.
//
// It watches the M topic "orders". For every new order it adds a status entry to the topic
// "order-status-cs"; every minute it prints how many orders there are; a message
// (POST /flow/agent/$WID$-CSharpAgent) answers with the counts.
//
//     curl -X POST -H "x-api-key: $KEY" -d '{}' http://localhost:8080/flow/agent/<WID>-CSharpAgent
using System;
using System.Collections.Generic;
using Coflows;

public class CSharpAgent
{
    /// Once at start, with every order already in the topic.
    public static void Load(object[] orders)
    {
        Console.WriteLine((orders == null ? 0 : orders.Length) + " orders at start");
    }

    /// A new order (a Dictionary<string, object>): acknowledge it in another topic.
    public static void Add(string id, object data)
    {
        var order = data as Dictionary<string, object>;
        object item = null;
        if (order != null)
            order.TryGetValue("item", out item);
        M.Base("order-status-cs").Add(new Dictionary<string, object> {
            { "order", id }, { "item", item }, { "status", "received" }, { "by", "C#" } });
    }

    public static void Exchange(string id, object order)
    {
        Console.WriteLine("order " + id + " is now " + Json.Serialize(order));
    }

    public static void Remove(string id, object order)
    {
        Console.WriteLine("order " + id + " was removed");
    }

    /// A message, as JSON text (CoFlows). At start it is {"Function": "Main", ...}.
    public static object Body(object data)
    {
        var message = Json.Parse((string)data) as Dictionary<string, object>;
        if (message != null && message.ContainsKey("Function") && (string)message["Function"] == "Main")
            return "started";
        return new Dictionary<string, object> {
            { "orders", M.Base("orders").Count() },
            { "acknowledged", M.Base("order-status-cs").Count() } };
    }

    public static void Job(DateTime timestamp, string executionType)
    {
        Console.WriteLine(timestamp.ToString("HH:mm:ss") + " (" + executionType + "): "
                          + M.Base("orders").Count() + " orders");
    }

    public static FPKG pkg()
    {
        return new FPKG(
            "$WID$-CSharpAgent",  // ID
            "$WID$",              // WorkflowID
            "C# Agent",           // Name
            "Acknowledges orders placed through PythonQuery.py/PlaceOrder (C#)",  // Description
            "orders",             // MID: the M topic it watches
            Utils.SetFunction("Load", new Load(Load)),
            Utils.SetFunction("Add", new MCallback(Add)),
            new MCallback(Exchange),
            new MCallback(Remove),
            new Body(Body),
            "0 * * ? * *",        // ScheduleCommand: second 0 of every minute
            new Job(Job));
    }
}
