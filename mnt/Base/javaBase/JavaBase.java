package javabase;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;

/**
 * Shared Java library of the example workflow (a Base file): compiled before the queries,
 * usable by every Java query ({@code import javabase.JavaBase;}) and from Python
 * ({@code coflows.engines.jvm.java_class("$WID$", "javabase.JavaBase")}).
 */
public class JavaBase {
    public static final String GREETING = "Hello from Java Base";

    /** One row of a price table: public fields and getters both become JSON properties. */
    public static class Quote {
        public String symbol;
        public LocalDate date;
        private double price;

        public Quote() {}

        public Quote(String symbol, LocalDate date, double price) {
            this.symbol = symbol;
            this.date = date;
            this.price = price;
        }

        public double getPrice() { return price; }

        public void setPrice(double price) { this.price = price; }
    }

    public static String greet(String name) {
        return GREETING + ", " + name + "!";
    }

    public static List<Quote> quotes(String symbol, int days) {
        List<Quote> out = new ArrayList<>();
        LocalDate start = LocalDate.of(2024, 1, 1);
        for (int i = 0; i < days; i++) out.add(new Quote(symbol, start.plusDays(i), 100.5 + i));
        return out;
    }

    public static double mean(List<Quote> quotes) {
        double sum = 0;
        for (Quote q : quotes) sum += q.getPrice();
        return quotes.isEmpty() ? Double.NaN : sum / quotes.size();
    }
}
