/// <info version="1.0.0">
///   <title>C# example query</title>
///   <description>A C# query: typed arguments, tables, errors, the C# Base and calls into Python.</description>
/// </info>
using System;
using System.Collections.Generic;
using CsBase;

public enum Side { Buy, Sell }

/// <summary>An order, built from a JSON object: {"Symbol": "ABC", "Quantity": 10, "Side": "Sell"}.</summary>
public class Order
{
    public string Symbol { get; set; }
    public int Quantity { get; set; }
    public Side Side { get; set; }
}

public class CSharpQuery
{
    /// <api name="Add">
    ///   <description>Adds two integers.</description>
    ///   <returns>x + y</returns>
    ///   <param name="x">first number</param>
    ///   <param name="y">second number</param>
    ///   <permissions><group id="$WID$" permission="read"/></permissions>
    /// </api>
    public static int Add(int x, int y)
    {
        return x + y;
    }

    /// <summary>Adds three integers: an overload of Add, chosen by the number of arguments.</summary>
    public static int Add(int x, int y, int z)
    {
        return x + y + z;
    }

    /// <summary>Greets through the C# Base.</summary>
    /// <param name="name">who to greet</param>
    public static string Hello(string name = "world")
    {
        return Text.Greet(name);
    }

    /// <summary>A table-like result: a list of objects (try Prices.csv).</summary>
    /// <param name="days">number of rows</param>
    public static List<Price> Prices(int days = 5)
    {
        var rows = new List<Price>();
        var start = new DateTime(2024, 1, 1);
        for (int i = 0; i < days; i++)
            rows.Add(new Price { Date = start.AddDays(i), Value = 100.5m + i, Volume = 1000 * (i + 1) });
        return rows;
    }

    /// <summary>Lists arrive as JSON (?values=[1,2,3]) or comma-separated (?values=1,2,3).</summary>
    public static double Mean(double[] values)
    {
        return Stats.Mean(values);
    }

    /// <summary>A JSON object becomes an instance of a class; the result is a dictionary.</summary>
    public static Dictionary<string, object> Place(Order order)
    {
        return new Dictionary<string, object>
        {
            { "symbol", order.Symbol },
            { "signed", order.Side == Side.Sell ? -order.Quantity : order.Quantity },
        };
    }

    /// <summary>Raises, to show how errors come back (500 with the .NET type and message).</summary>
    public static int Fail(string message = "something went wrong")
    {
        throw new InvalidOperationException(message);
    }

    /// <summary>Calls the Python query PythonQuery.py (which uses the Python Base) through the host API.</summary>
    public static string HelloFromPython(string name = "C#")
    {
        return (string)Coflows.Host.Call("PythonQuery.py", "Hello", name);
    }

    /// <api name="Version">
    ///   <description>A static property is a function without arguments.</description>
    /// </api>
    public static string Version
    {
        get { return "1.0.0"; }
    }
}
