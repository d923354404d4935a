import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.List;
import java.util.Map;
import javabase.JavaBase;

/// <info version="1.0.0">
///   <title>Java example query</title>
///   <description>Every feature of a Java query: typed arguments, overloads, objects in and out, errors, jars (Gson), Base and calls to Python.</description>
/// </info>
public class JavaQuery {
    private static final Gson GSON = new Gson();

    /// <api name="Add">
    ///   <description>Adds two integers (with a third argument, three).</description>
    ///   <returns>x + y</returns>
    ///   <param name="x" type="integer">first number</param>
    ///   <param name="y" type="integer">second number</param>
    ///   <permissions><group id="$WID$" permission="read"/></permissions>
    /// </api>
    public static int Add(int x, int y) {
        return x + y;
    }

    public static int Add(int x, int y, int z) {
        return x + y + z;
    }

    /**
     * A list of objects from the Base library (try {@code Quotes.csv}).
     *
     * @param symbol the ticker
     * @param days   how many days
     */
    public static List<JavaBase.Quote> Quotes(String symbol, int days) {
        return JavaBase.quotes(symbol, days);
    }

    /**
     * Objects in: a JSON array of quotes (POST {"quotes": [{"symbol": "A", "price": 1.5}]}).
     *
     * @return the mean price
     */
    public static double MeanPrice(List<JavaBase.Quote> quotes) {
        return JavaBase.mean(quotes);
    }

    /** Gson, from the workspace's Jars: any JSON object, serialized by Gson. */
    public static String ToJson(Map<String, Object> data) {
        return GSON.toJson(data);
    }

    /** A Gson tree as the result: returned as the JSON it holds. */
    public static JsonObject Parse(String json) {
        JsonObject o = JsonParser.parseString(json).getAsJsonObject();
        o.addProperty("parsedBy", "gson");
        return o;
    }

    /** Raises, to show how errors come back (500 with the Java type and message). */
    public static void Fail(String message) {
        throw new IllegalArgumentException(message);
    }

    /** Calls a Python function of this workflow through the runtime. */
    public static Object HelloFromPython() {
        return coflows.Host.call("PythonQuery.py", "Hello", "Java");
    }

    /** The Base library's greeting. */
    public static String Hello(String name) {
        return JavaBase.greet(name);
    }
}
