//! Tests of [`super`]: positive and benign cases per shape.

use super::*;

#[test]
fn injections() {
    for v in [
        "1234 OR 1=1",
        "-1839' or '1'='1",
        "-1839\" or \"1\"=\"2",
        "2010-01-01'+sleep(20.to_i)+'",
        "EmptyValue' and 526=527",
        "foo') UNION ALL select NULL --",
        "foo')waitfor delay'5:0:20'--",
        "admin'--",
        "1; DROP TABLE users",
        "1 UNION SELECT username, password FROM users",
        "' OR 1=1 #",
        "1' ORDER BY 3--",
        "x' AND extractvalue(1,concat(0x7e,version()))--",
        "@@version",
        "1 and 1=1",
        "/*!50000select*/ 1",
        "u_id[$ne]",
        "$where",
        "[$regex]^adm",
        "' or true; foo",
        "OR 1# ",
        "1='1' or-- -",
        "DROP/*comment*/sampletable",
        "declare @b",
        "id=password::int",
        "function(foo)::text",
        "1) AS t FROM users",
        "x'; exec xp_cmdshell 'dir'",
        "procedure analyse (",
        "lo_import('/etc/passwd')",
        "admin@juice-sh.op\\' or json (id);",
        "'or(id glob 1)--",
        "1=1",
        "a=b,1=1",
        "'1' not regexp '2'",
        "'admin', '1'='1'",
        "1 is not 2",
        "ALTER TABLE `users` ADD x",
        " HAVING COUNT(CustomerID) > 5",
        "admin' or '1",
        "foo'or'oof",
    ] {
        assert!(detect(v).is_some(), "missed: {v}");
    }
}

#[test]
fn benign() {
    for v in [
        "24-7-TEAM",
        "1/26/11",
        "TRUE#LAST",
        "Y'ALL COME BACK NOW",
        "NOT ALL WHO WANDER",
        "FROM TO TAG CHRISTMAS",
        "1950's dresses",
        "MATS 5\" BY 7\"",
        "O'Brien and Smith",
        "rock and roll",
        "alice@example.com",
        "select a plan that suits you",
        "I'm here; see you",
        "price < 20 and > 10",
        "hello world",
        "$5 off",
        "price[$]",
        "costs $ne",
        "std::string and std::vector",
        "known as Bob from Texas",
        "12:30 or 13:00",
        "O\\'Reilly or Packt",
        "3 to 6 months",
        "size 10 = 42",
        "12 IS A LUCKY NUMBER",
        "create table runner",
        " 0=[]'",
        "the 'red' or 'blue' one",
        "my parents' or yours?",
        "rock 'n' roll or 'jazz'",
        "Mike's or Jane's",
        "select 'and'",
        "'countdown calendar\" and \"disney:",
    ] {
        assert_eq!(detect(v), None, "flagged: {v}");
    }
}
