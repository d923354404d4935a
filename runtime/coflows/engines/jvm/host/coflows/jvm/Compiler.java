package coflows.jvm;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileManager;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.StandardLocation;
import javax.tools.ToolProvider;

import com.sun.source.tree.ClassTree;
import com.sun.source.tree.CompilationUnitTree;
import com.sun.source.tree.MethodTree;
import com.sun.source.tree.Tree;
import com.sun.source.tree.VariableTree;
import com.sun.source.util.JavacTask;

/**
 * Compiles Java sources in memory with {@code javax.tools} (no javac process, no class files on
 * disk). Classes already compiled for a workflow (its Base) are visible to the compilation through
 * the file manager, as if they were on the class path.
 */
public final class Compiler {
    private Compiler() {}

    private static final JavaCompiler JAVAC = ToolProvider.getSystemJavaCompiler();

    /** The outcome of one compilation. */
    public static final class Result {
        final Map<String, byte[]> classes = new LinkedHashMap<>();
        final Map<String, String> origin = new HashMap<>(); // class → source name
        final List<Map<String, Object>> diagnostics = new ArrayList<>();
        final Map<String, List<String>> declared = new HashMap<>(); // top-level class → methods in source order
        boolean ok;
        String savedDiagnostics; // set when read back from bytes

        /** Everything a load uses (classes, their sources, declared methods, diagnostics) as bytes: the
         *  engine keeps a successful compilation between starts (engines/jvm/cache.py). */
        public byte[] toBytes() throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = new DataOutputStream(bytes);
            out.writeInt(FORMAT);
            out.writeBoolean(ok);
            out.writeInt(classes.size());
            for (Map.Entry<String, byte[]> e : classes.entrySet()) {
                out.writeUTF(e.getKey());
                out.writeInt(e.getValue().length);
                out.write(e.getValue());
            }
            out.writeInt(origin.size());
            for (Map.Entry<String, String> e : origin.entrySet()) {
                out.writeUTF(e.getKey());
                out.writeUTF(e.getValue());
            }
            out.writeInt(declared.size());
            for (Map.Entry<String, List<String>> e : declared.entrySet()) {
                out.writeUTF(e.getKey());
                out.writeInt(e.getValue().size());
                for (String m : e.getValue()) out.writeUTF(m);
            }
            byte[] diags = diagnostics().getBytes(StandardCharsets.UTF_8);
            out.writeInt(diags.length);
            out.write(diags);
            out.flush();
            return bytes.toByteArray();
        }

        /** A result written by {@link #toBytes}; IOException if the bytes are not one. */
        public static Result fromBytes(byte[] data) throws IOException {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
            if (in.readInt() != FORMAT) throw new IOException("not a cached compilation of this version");
            Result r = new Result();
            r.ok = in.readBoolean();
            for (int i = in.readInt(); i > 0; i--) {
                String name = in.readUTF();
                byte[] code = new byte[length(in)];
                in.readFully(code);
                r.classes.put(name, code);
            }
            for (int i = in.readInt(); i > 0; i--) r.origin.put(in.readUTF(), in.readUTF());
            for (int i = in.readInt(); i > 0; i--) {
                String cls = in.readUTF();
                List<String> methods = new ArrayList<>();
                for (int j = in.readInt(); j > 0; j--) methods.add(in.readUTF());
                r.declared.put(cls, methods);
            }
            byte[] diags = new byte[length(in)];
            in.readFully(diags);
            r.savedDiagnostics = new String(diags, StandardCharsets.UTF_8);
            if (in.read() != -1) throw new IOException("trailing bytes in a cached compilation");
            return r;
        }

        private static final int FORMAT = 0x43464a31; // "CFJ1"

        /** A length read from damaged bytes must not allocate more than the bytes that are left. */
        private static int length(DataInputStream in) throws IOException {
            int n = in.readInt();
            if (n < 0 || n > in.available()) throw new IOException("a damaged cached compilation");
            return n;
        }

        /** The methods of a top-level class as declared, in source order: {@code name(Type, Type)}. */
        public String[] declaredMethods(String className) {
            List<String> l = declared.get(className);
            return l == null ? new String[0] : l.toArray(new String[0]);
        }

        public boolean ok() { return ok; }

        public Map<String, byte[]> classes() { return classes; }

        /** JSON list of {source, line, column, kind, message}. */
        public String diagnostics() { return savedDiagnostics != null ? savedDiagnostics : Json.write(diagnostics); }

        /** Top-level classes compiled from {@code source}. */
        public String[] topLevelClasses(String source) {
            List<String> out = new ArrayList<>();
            for (Map.Entry<String, String> e : origin.entrySet()) {
                if (e.getValue().equals(source) && !e.getKey().contains("$")) out.add(e.getKey());
            }
            out.sort(null);
            return out.toArray(new String[0]);
        }

        public String[] classNames() { return classes.keySet().toArray(new String[0]); }
    }

    public static boolean available() {
        return JAVAC != null;
    }

    /**
     * @param names     source names (shown in diagnostics; the last path segment must be {@code Class.java})
     * @param texts     source texts
     * @param classpath jars and directories
     * @param visible   a loader whose in-memory classes the sources may use (a workflow's Base), or null
     * @param options   javac options
     */
    public static Result compile(String[] names, String[] texts, String[] classpath, WorkflowLoader visible,
                                 String[] options) throws IOException {
        if (JAVAC == null) throw new IllegalStateException("no Java compiler in this JVM (a JRE, not a JDK?)");
        Result result = new Result();
        DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
        StandardJavaFileManager std = JAVAC.getStandardFileManager(diags, Locale.ROOT, StandardCharsets.UTF_8);
        try {
            List<File> cp = new ArrayList<>();
            if (classpath != null) for (String p : classpath) cp.add(new File(p));
            std.setLocation(StandardLocation.CLASS_PATH, cp);
            Map<String, byte[]> vis = visible == null ? Map.of() : visible.visibleClasses();
            MemoryFileManager fm = new MemoryFileManager(std, vis, result);
            List<JavaFileObject> units = new ArrayList<>();
            for (int i = 0; i < names.length; i++) units.add(new Source(names[i], texts[i]));
            StringWriter out = new StringWriter();
            JavacTask task = (JavacTask) JAVAC.getTask(out, fm, diags,
                    options == null ? null : Arrays.asList(options), null, units);
            // read the declarations before generating: javac frees the trees' members as it goes
            for (CompilationUnitTree unit : task.parse()) declarations(unit, result);
            task.generate();
            result.ok = true;
            for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) {
                if (d.getKind() == Diagnostic.Kind.ERROR) result.ok = false;
            }
            for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) {
                if (d.getKind() == Diagnostic.Kind.NOTE) continue;
                Map<String, Object> m = new LinkedHashMap<>();
                JavaFileObject src = d.getSource();
                m.put("source", src instanceof Source ? ((Source) src).name : (src == null ? null : src.getName()));
                m.put("line", d.getLineNumber() == Diagnostic.NOPOS ? null : d.getLineNumber());
                m.put("column", d.getColumnNumber() == Diagnostic.NOPOS ? null : d.getColumnNumber());
                m.put("kind", d.getKind().name());
                m.put("message", d.getMessage(Locale.ROOT));
                result.diagnostics.add(m);
            }
            if (!result.ok) {
                result.classes.clear();
                result.origin.clear();
            }
            return result;
        } finally {
            std.close();
        }
    }

    /** Erased simple type name, as reflection's {@code getSimpleName()} gives it: {@code List}, {@code int[]}. */
    static String simpleType(String t) {
        String s = t.replaceAll("<.*>", "").replaceAll("@\\S+\\s+", "").trim();
        if (s.endsWith("...")) s = s.substring(0, s.length() - 3) + "[]";
        int dims = 0;
        while (s.endsWith("[]")) {
            s = s.substring(0, s.length() - 2).trim();
            dims++;
        }
        int dot = s.lastIndexOf('.');
        if (dot >= 0) s = s.substring(dot + 1);
        StringBuilder sb = new StringBuilder(s);
        for (int i = 0; i < dims; i++) sb.append("[]");
        return sb.toString();
    }

    private static void declarations(CompilationUnitTree unit, Result result) {
        String pkg = unit.getPackageName() == null ? "" : unit.getPackageName().toString();
        for (Tree t : unit.getTypeDecls()) {
            if (!(t instanceof ClassTree)) continue;
            ClassTree c = (ClassTree) t;
            String name = (pkg.isEmpty() ? "" : pkg + ".") + c.getSimpleName();
            List<String> methods = new ArrayList<>();
            for (Tree m : c.getMembers()) {
                if (!(m instanceof MethodTree)) continue;
                MethodTree mt = (MethodTree) m;
                StringBuilder sb = new StringBuilder(mt.getName().toString()).append('(');
                int i = 0;
                for (VariableTree p : mt.getParameters()) {
                    sb.append(i++ > 0 ? ", " : "").append(simpleType(p.getType().toString()));
                }
                methods.add(sb.append(')').toString());
            }
            result.declared.put(name, methods);
        }
    }

    /** {@code mem:///path}, with whatever characters the path has quoted. */
    static URI uri(String path) {
        try {
            return new URI("mem", null, path, null);
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException("bad source name " + path, e);
        }
    }

    static final class Source extends SimpleJavaFileObject {
        final String name;
        final String text;

        Source(String name, String text) {
            super(uri("/" + name.replace('\\', '/')), Kind.SOURCE);
            this.name = name;
            this.text = text;
        }

        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
            return text;
        }
    }

    /** A class file in memory: compiled output, or a visible Base class read by javac. */
    static final class ClassFile extends SimpleJavaFileObject {
        final String binaryName;
        byte[] bytes;
        final Result sink;
        final String sourceName;

        ClassFile(String binaryName, byte[] bytes, Result sink, String sourceName) {
            super(uri("/classes/" + binaryName.replace('.', '/') + ".class"), Kind.CLASS);
            this.binaryName = binaryName;
            this.bytes = bytes;
            this.sink = sink;
            this.sourceName = sourceName;
        }

        @Override
        public InputStream openInputStream() {
            return new ByteArrayInputStream(bytes);
        }

        @Override
        public OutputStream openOutputStream() {
            return new ByteArrayOutputStream() {
                @Override
                public void close() throws IOException {
                    super.close();
                    bytes = toByteArray();
                    sink.classes.put(binaryName, bytes);
                    if (sourceName != null) sink.origin.put(binaryName, sourceName);
                }
            };
        }
    }

    static final class MemoryFileManager extends ForwardingJavaFileManager<StandardJavaFileManager> {
        private final Map<String, List<ClassFile>> byPackage = new HashMap<>();
        private final Result sink;

        MemoryFileManager(StandardJavaFileManager std, Map<String, byte[]> visible, Result sink) {
            super(std);
            this.sink = sink;
            for (Map.Entry<String, byte[]> e : visible.entrySet()) {
                String n = e.getKey();
                int dot = n.lastIndexOf('.');
                String pkg = dot < 0 ? "" : n.substring(0, dot);
                byPackage.computeIfAbsent(pkg, k -> new ArrayList<>()).add(new ClassFile(n, e.getValue(), null, null));
            }
        }

        @Override
        public JavaFileObject getJavaFileForOutput(Location location, String className, JavaFileObject.Kind kind,
                                                   FileObject sibling) {
            String src = sibling instanceof Source ? ((Source) sibling).name : null;
            return new ClassFile(className, null, sink, src);
        }

        @Override
        public Iterable<JavaFileObject> list(Location location, String packageName, Set<JavaFileObject.Kind> kinds,
                                             boolean recurse) throws IOException {
            Iterable<JavaFileObject> base = super.list(location, packageName, kinds, recurse);
            if (location != StandardLocation.CLASS_PATH || !kinds.contains(JavaFileObject.Kind.CLASS)) return base;
            List<JavaFileObject> out = new ArrayList<>();
            for (Map.Entry<String, List<ClassFile>> e : byPackage.entrySet()) {
                String p = e.getKey();
                boolean inside = packageName.isEmpty() ? (recurse || p.isEmpty())
                        : (p.equals(packageName) || (recurse && p.startsWith(packageName + ".")));
                if (inside) out.addAll(e.getValue());
            }
            if (out.isEmpty()) return base;
            for (JavaFileObject f : base) out.add(f);
            return out;
        }

        @Override
        public String inferBinaryName(Location location, JavaFileObject file) {
            if (file instanceof ClassFile) return ((ClassFile) file).binaryName;
            return super.inferBinaryName(location, file);
        }

        @Override
        public boolean isSameFile(FileObject a, FileObject b) {
            if (a instanceof ClassFile || b instanceof ClassFile || a instanceof Source || b instanceof Source) {
                return a.toUri().equals(b.toUri());
            }
            return super.isSameFile(a, b);
        }

        @Override
        public boolean hasLocation(Location location) {
            return location == StandardLocation.CLASS_OUTPUT || super.hasLocation(location);
        }
    }
}
