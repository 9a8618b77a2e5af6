import ArgumentParser
import Foundation
import NIOSSL
import WorkflowEngine
import WorkflowPrimitive

/// The relay `notify` steps send email through.
struct SMTPOptions: ParsableArguments {
    @Option(help: "The SMTP relay notify steps send email through (host). Without it, email steps fail notify_not_configured.")
    var smtpHost: String?
    @Option(help: "Its port (25; 587 for STARTTLS submission; 465 for TLS).") var smtpPort = 25
    @Option(help: "The sender address of notify emails.") var smtpFrom = "uwf@localhost"
    @Option(help: "off (a relay on the node's network), starttls (upgrade before sending; refused if not offered) or tls (port 465).")
    var smtpTls = "off"
    @Option(help: "Log in to the relay as this user (AUTH PLAIN; needs --smtp-tls starttls or tls, and --smtp-password-file).")
    var smtpUsername: String?
    @Option(help: "A file holding the relay password (never a flag: flags show in process listings).") var smtpPasswordFile: String?
    @Option(help: "PEM CA certificate(s) the relay's certificate must chain to (default: the system's).") var smtpCaCert: String?

    func validate() throws {
        guard (1...65_535).contains(smtpPort) else { throw ValidationError("--smtp-port must be from 1 to 65535") }
        guard NotifyConfig.isAddress(smtpFrom) || smtpFrom.hasSuffix("@localhost") else {
            throw ValidationError("--smtp-from must be a mail address")
        }
        guard let security = SMTPConfiguration.Security(rawValue: smtpTls) else {
            throw ValidationError("--smtp-tls must be off, starttls or tls")
        }
        if smtpUsername != nil {
            guard security != .off else {
                throw ValidationError("--smtp-username needs --smtp-tls starttls or tls: a password is never sent in clear")
            }
            guard smtpPasswordFile != nil else { throw ValidationError("--smtp-username needs --smtp-password-file") }
        }
    }

    /// The relay's settings, with the password and CA read from their files; nil without `--smtp-host`.
    func configuration() throws -> SMTPConfiguration? {
        guard let smtpHost else { return nil }
        var password: String?
        if let file = smtpPasswordFile {
            do {
                password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                throw ValidationError("--smtp-password-file \(file) cannot be read")
            }
        }
        var roots: [NIOSSLCertificate]?
        if let smtpCaCert {
            do {
                roots = try NIOSSLCertificate.fromPEMFile(smtpCaCert)
            } catch {
                throw ValidationError("--smtp-ca-cert \(smtpCaCert) is not a PEM certificate file")
            }
        }
        return SMTPConfiguration(
            host: smtpHost,
            port: smtpPort,
            from: smtpFrom,
            security: SMTPConfiguration.Security(rawValue: smtpTls) ?? .off,
            username: smtpUsername,
            password: password,
            trustRoots: roots
        )
    }
}
