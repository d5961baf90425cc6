//! Uploaded files judged by the name they are stored under: the multipart
//! `filename=` of each file part and the name headers that upload APIs
//! use (`X-Filename`, `X_File_Name`, `X.Filename`). A name is read the way
//! a server's file system and handler mapping read it: case folded, cut
//! at a `;` or NUL (IIS maps `cmd.asp;.jpg` as ASP, C APIs stop at NUL),
//! blanks around dots and trailing dots and blanks dropped (Windows drops
//! them), only its last path segment. Two things are refused:
//! - a server-side script: for PHP any extension of the chain, not only
//!   the last (`shell.php.jpg` runs as PHP where a handler maps `.php`
//!   anywhere in the name), reported as `injection_php`; for the other
//!   script engines the last extension, as `injection_java` for JSP and
//!   `upload_restricted_file` for the rest;
//! - a file that configures the server, the application or a shell when it
//!   lands where it is read (`.htaccess`, `web.config`, `.user.ini`,
//!   `wp-config.php`, `authorized_keys`, `.bashrc`, cloud credentials):
//!   `upload_restricted_file`.

use std::borrow::Cow;

use crate::{
    detect::{fields::Place, multipart::multipart},
    finding::Kind,
    parse::Request,
};

/// PHP's extensions, as handler mappings commonly list them.
fn php_extension(ext: &str) -> bool {
    matches!(
        ext,
        "phtml" | "phar" | "pht" | "phps" | "phpt" | "pgif" | "inc"
    ) || ext
        .strip_prefix("php")
        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
}

/// Java Server Pages.
fn jsp_extension(ext: &str) -> bool {
    matches!(ext, "jsp" | "jspx" | "jspf" | "jsw" | "jsv" | "jtml")
}

/// Other server-side script engines' extensions (ASP and ASP.NET, CGI,
/// Perl, SSI, ColdFusion).
fn script_extension(ext: &str) -> bool {
    matches!(
        ext,
        "asp"
            | "aspx"
            | "asa"
            | "asax"
            | "ascx"
            | "ashx"
            | "asmx"
            | "axd"
            | "cer"
            | "cshtml"
            | "vbhtml"
            | "cgi"
            | "pl"
            | "shtml"
            | "stm"
            | "shtm"
            | "cfm"
            | "cfml"
            | "cfc"
    )
}

/// Names that configure what reads them: web servers (per-directory
/// files), PHP, frameworks' settings, shells and SSH, and credentials
/// files of cloud and package tools.
fn config_file(name: &str) -> bool {
    matches!(
        name,
        ".htaccess"
            | ".htpasswd"
            | ".htdigest"
            | ".user.ini"
            | "php.ini"
            | "web.config"
            | "applicationhost.config"
            | "settings.php"
            | "settings.py"
            | "local_settings.py"
            | "localsettings.php"
            | "configuration.php"
            | "config.php"
            | "config.inc.php"
            | "config.yml"
            | "config.yaml"
            | "parameters.yml"
            | "database.yml"
            | "secrets.yml"
            | "application.properties"
            | "appsettings.json"
            | "local.xml"
            | "env.php"
            | ".env"
            | ".bashrc"
            | ".bash_profile"
            | ".bash_login"
            | ".profile"
            | ".zshrc"
            | ".login"
            | ".cshrc"
            | ".ssh"
            | "authorized_keys"
            | "authorized_keys2"
            | "known_hosts"
            | "id_rsa"
            | "id_ecdsa"
            | "id_ed25519"
            | "crontab"
            | ".boto"
            | ".s3cfg"
            | ".netrc"
            | ".npmrc"
            | ".pypirc"
            | ".dockercfg"
            | ".git-credentials"
            | ".gitconfig"
            | "credentials"
    ) || name.starts_with(".env.")
        // `wp-config.php`, also kept under another extension
        // (`wp-config-php.bak`, `wp-config_php.txt`): the same secrets.
        || name.starts_with("wp-config")
}

/// The name a server stores: case folded, blanks next to a dot removed,
/// trailing dots and blanks dropped, the last path segment only.
fn stored_name(raw: &str) -> String {
    let raw = raw.split([';', '\0']).next().unwrap_or("");
    let last = raw
        .rsplit(['/', '\\'])
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let mut out = String::with_capacity(last.len());
    let mut chars = last.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            // Blanks before a dot, or after one, are not part of the name
            // the handler mapping sees.
            let mut run = String::from(c);
            while let Some(&n) = chars.peek().filter(|n| n.is_whitespace()) {
                run.push(n);
                chars.next();
            }
            if chars.peek() == Some(&'.') || out.ends_with('.') {
                continue;
            }
            out.push_str(&run);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out.trim_end_matches(['.', ' ']).to_string()
}

/// What an uploaded file's name makes it, if anything.
pub fn judge(raw: &str) -> Option<(Kind, &'static str)> {
    let name = stored_name(raw);
    if name.is_empty() {
        return None;
    }
    if config_file(&name) {
        return Some((Kind::UploadRestrictedFile, "configuration file upload"));
    }
    // The extension chain: every dot-separated part after the stem (a
    // hidden file's name is its own stem).
    let mut exts = name.trim_start_matches('.').split('.').skip(1).peekable();
    while let Some(ext) = exts.next() {
        if php_extension(ext) {
            return Some((Kind::InjectionPhp, "php script upload"));
        }
        if exts.peek().is_none() && jsp_extension(ext) {
            return Some((Kind::InjectionJava, "jsp script upload"));
        }
        if exts.peek().is_none() && script_extension(ext) {
            return Some((Kind::UploadRestrictedFile, "server script upload"));
        }
    }
    None
}

/// A header that names an uploaded file (`X-Filename`, `X_File_Name`,
/// `X.Filename`, `X-Upload-Filename`).
fn names_a_file(header: &str) -> bool {
    // Its letters and digits, read from the end, end in "filename" (no
    // allocation: this runs on every header of every request).
    let mut tail = header
        .bytes()
        .rev()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase());
    b"filename"
        .iter()
        .rev()
        .all(|want| tail.next() == Some(*want))
}

/// The names of the files a request uploads, with where each was named.
pub fn names(req: &Request) -> Vec<(Place, Cow<'_, str>)> {
    let mut out: Vec<(Place, Cow<'_, str>)> = req
        .other_headers()
        .filter(|(n, _)| names_a_file(n))
        .map(|(_, v)| (Place::Header, Cow::Borrowed(v.trim())))
        .collect();
    out.extend(
        multipart(req)
            .into_iter()
            .filter_map(|p| p.filename.map(|f| (Place::Body, f))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_configuration_names_are_refused_however_spelled() {
        for (name, kind) in [
            ("shell.php", "injection_php"),
            ("photo. php", "injection_php"),
            ("dangerous. phtml", "injection_php"),
            ("test.php.jpg", "injection_php"),
            ("test.php7.gif", "injection_php"),
            ("test.phar .png", "injection_php"),
            ("dangerous.phpt", "injection_php"),
            ("SHELL.PhP...", "injection_php"),
            ("../../var/www/x.php ", "injection_php"),
            ("cmd.aspx", "upload_restricted_file"),
            ("cmd.jsp;.png", "injection_java"),
            ("index.JSPX", "injection_java"),
            ("report.asp", "upload_restricted_file"),
            ("shell.php\0.jpg", "injection_php"),
            (".htaccess", "upload_restricted_file"),
            ("web.config", "upload_restricted_file"),
            (".user.ini", "upload_restricted_file"),
            ("config.yml ", "upload_restricted_file"),
            ("settings. php", "upload_restricted_file"),
            ("wp-config-php.bak", "upload_restricted_file"),
            ("wp-config_php.txt", "upload_restricted_file"),
            (".boto", "upload_restricted_file"),
            (
                "C:\\Users\\me\\.ssh\\authorized_keys",
                "upload_restricted_file",
            ),
        ] {
            assert_eq!(judge(name).map(|(k, _)| k.name()), Some(kind), "{name}");
        }
    }

    #[test]
    fn ordinary_file_names_pass() {
        for name in [
            "test.png",
            "holiday photo.jpg",
            "abc.botox.jpg",
            "amtrra.jpg",
            "JACpic.jpg",
            "php-tutorial.pdf",
            "my.config.backup.tar.gz",
            "report 2024. final.docx",
            "aspen.jpg",
            "plan.pl.txt.zip",
            "report.asp.txt",
            "environment.md",
            "",
            "   ",
        ] {
            assert_eq!(judge(name), None, "{name}");
        }
    }

    #[test]
    fn upload_names_come_from_parts_and_name_headers() {
        let req = Request {
            method: "POST".into(),
            path: "/upload".into(),
            content_type: Some("multipart/form-data; boundary=XyZ".into()),
            headers: crate::parse::Hidden("X_File.Name: a.php\r\nX-Request-Id: b.php\r\n".into()),
            body: b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"c.phtml\"\r\n\r\nhi\r\n--XyZ--\r\n"
                .to_vec(),
            ..Request::default()
        };
        let got: Vec<_> = names(&req)
            .into_iter()
            .map(|(p, n)| (p, n.into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (Place::Header, "a.php".to_string()),
                (Place::Body, "c.phtml".to_string())
            ]
        );
    }
}
