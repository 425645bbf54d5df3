// SPDX-License-Identifier: EUPL-1.2
//
// SecureSetup - SCRAM users and ACLs for ketenbus's secure test broker, in one
// JVM start through Kafka's Admin API (tests/kafka/broker.sh runs it with
// `java -cp '<libs>/*' SecureSetup.java BOOTSTRAP PREFIX SPEC...` against the
// super-user listener). Each SPEC is one of
//
//   user:NAME:PASSWORD_FILE       SCRAM-SHA-512 credential for NAME
//   adapter:PRINCIPAL:SOURCE      may write <prefix>.in.<source> and
//                                 <prefix>.quarantine.<source> and read their
//                                 configs, nothing else
//   router:PRINCIPAL              reads <prefix>.in.*, writes <prefix>.out.*,
//                                 <prefix>.dlq and <prefix>.audit, registers
//                                 projected schemas in <prefix>.schemas, uses its
//                                 group <prefix>-route and transactional ids
//                                 <prefix>-route-*
//   subscriber:PRINCIPAL:NAME     may read <prefix>.out.<name> only, with groups
//                                 <prefix>-<name>* and <prefix>.deliver.<name>*
//
// Everything not granted is denied (StandardAuthorizer, no allow-if-no-ACL).
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class SecureSetup {
    private static final List<AclBinding> acls = new ArrayList<>();

    private static void allow(String principal, ResourceType type, String name, PatternType pattern,
                              AclOperation... ops) {
        for (AclOperation op : ops)
            acls.add(new AclBinding(new ResourcePattern(type, name, pattern),
                                    new AccessControlEntry("User:" + principal, "*", op,
                                                           AclPermissionType.ALLOW)));
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: SecureSetup BOOTSTRAP PREFIX SPEC...");
            System.exit(2);
        }
        String bootstrap = args[0], p = args[1];
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        final ResourceType T = ResourceType.TOPIC, G = ResourceType.GROUP,
                           X = ResourceType.TRANSACTIONAL_ID;
        final PatternType LIT = PatternType.LITERAL, PRE = PatternType.PREFIXED;
        final AclOperation R = AclOperation.READ, W = AclOperation.WRITE,
                           D = AclOperation.DESCRIBE, C = AclOperation.CREATE,
                           DC = AclOperation.DESCRIBE_CONFIGS;
        for (int i = 2; i < args.length; i++) {
            String[] f = args[i].split(":", 3);
            switch (f[0]) {
            case "user": {
                String pw = Files.readString(Path.of(f[2]), StandardCharsets.UTF_8).strip();
                users.add(new UserScramCredentialUpsertion(
                    f[1], new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), pw));
                break;
            }
            case "adapter":
                // DC: the adapter learns the topics' max.message.bytes at start
                allow(f[1], T, p + ".in." + f[2], LIT, W, D, C, DC);
                allow(f[1], T, p + ".quarantine." + f[2], LIT, W, D, C, DC);
                // a transactional ingress (Kadaster: a round is one transaction)
                allow(f[1], X, p + "-" + f[2] + "-ingress-", PRE, W, D);
                break;
            case "router":
                allow(f[1], T, p + ".in.", PRE, R, D);
                allow(f[1], T, p + ".out.", PRE, W, D, C);
                allow(f[1], T, p + ".dlq", LIT, W, D, C);
                allow(f[1], T, p + ".audit", LIT, W, R, D, C);
                allow(f[1], T, p + ".schemas", LIT, W, R, D, C);
                allow(f[1], G, p + "-route", LIT, R, D);
                allow(f[1], G, "ketenbus-route-dedup-scan", LIT, R, D);
                allow(f[1], G, "ketenbus-audit-resume", LIT, R, D);
                allow(f[1], X, p + "-route-", PRE, W, D);
                break;
            case "subscriber":
                allow(f[1], T, p + ".out." + f[2], LIT, R, D);
                allow(f[1], G, p + "-" + f[2], PRE, R, D);
                allow(f[1], G, p + ".deliver." + f[2], PRE, R, D);
                allow(f[1], T, p + ".retry." + f[2], LIT, R, W, D, C);
                allow(f[1], T, p + ".dlq." + f[2], LIT, R, W, D, C);
                break;
            default:
                System.err.println("SecureSetup: unknown spec " + args[i]);
                System.exit(2);
            }
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(props)) {
            if (!users.isEmpty())
                admin.alterUserScramCredentials(users).all().get(60, TimeUnit.SECONDS);
            if (!acls.isEmpty())
                admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
        }
        System.err.println("[kafka] secure setup for prefix " + p + ": " + users.size() +
                           " SCRAM users, " + acls.size() + " ACLs");
    }
}
