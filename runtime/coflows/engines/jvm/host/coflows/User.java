package coflows;

import coflows.jvm.Json;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Who is calling the running Java code (CoFlows' {@code User.ContextUser} / {@code User.Permission}).
 *
 * <pre>{@code
 * coflows.User me = coflows.User.current();   // getId(), getEmail(), getName(), isAdmin(), isAnonymous(), getGroups()
 * int level = coflows.User.permission("$WID$"); // -2 none, -1 denied, 0 view, 1 read, 2 write
 * }</pre>
 *
 * The identity follows the call: the HTTP caller, the original caller of a cross-language call,
 * the writer of the M change an agent hook handles, the submitter of a flow run; anonymous outside
 * a call. Ask on the thread the runtime called (a thread Java starts itself has no caller).
 */
public final class User {
    private final String id, email, name;
    private final boolean admin, anonymous;
    private final Map<String, Long> groups;

    private User(String id, String email, String name, boolean admin, boolean anonymous, Map<String, Long> groups) {
        this.id = id;
        this.email = email;
        this.name = name;
        this.admin = admin;
        this.anonymous = anonymous;
        this.groups = Collections.unmodifiableMap(groups);
    }

    /** The caller of the running call. */
    public static User current() {
        Object v = Host.reply(Host.callback().caller("user", "[]"));
        if (!(v instanceof Map)) throw new IllegalStateException("the runtime did not describe the caller");
        Map<?, ?> d = (Map<?, ?>) v;
        Map<String, Long> groups = new LinkedHashMap<>();
        Object g = d.get("groups");
        if (g instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) g).entrySet())
                groups.put(String.valueOf(e.getKey()), ((Number) e.getValue()).longValue());
        }
        Object email = d.get("email"), name = d.get("name");
        return new User(String.valueOf(d.get("id")), email == null ? null : String.valueOf(email),
                name == null ? "" : String.valueOf(name), Boolean.TRUE.equals(d.get("admin")),
                Boolean.TRUE.equals(d.get("anonymous")), groups);
    }

    /** CoFlows' name for {@link #current()}. */
    public static User ContextUser() { return current(); }

    /**
     * The caller's level in a group: the running workflow's ID (or "$WID$") gives the level on the
     * workflow, "Public" Read, another group the membership's level; admin Write; nothing -2.
     */
    public static int permission(String groupId) {
        if (groupId == null || groupId.isEmpty()) throw new IllegalArgumentException("permission: a group id is needed");
        Object v = Host.reply(Host.callback().caller("permission", Json.write(new Object[] {groupId})));
        return ((Number) v).intValue();
    }

    /** CoFlows' capitalized name. */
    public static int Permission(String groupId) { return permission(groupId); }

    /** The principal id: the user's email (lower case), "root" for the admin key, "anonymous". */
    public String getId() { return id; }
    /** The user's email, or null for the admin key and anonymous callers. */
    public String getEmail() { return email; }
    public String getName() { return name; }
    public boolean isAdmin() { return admin; }
    public boolean isAnonymous() { return anonymous; }
    /** Group id → level (unexpired memberships), read-only. */
    public Map<String, Long> getGroups() { return groups; }

    public String id() { return id; }
    public String email() { return email; }
    public String name() { return name; }
    public Map<String, Long> groups() { return groups; }

    @Override
    public String toString() { return "User(" + id + ")"; }
}
