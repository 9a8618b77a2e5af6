import ArgumentParser
import Foundation

/// `uwf config check|print`: what `uwf serve` would run with, without starting it.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check or print the server's configuration (flags > UWF_* environment > --config file > defaults).",
        subcommands: [Check.self, Print.self, Reference.self]
    )

    /// The flags `uwf serve` would get, merged with the environment and the file, and parsed (with every validation).
    static func resolve(_ arguments: [String]) throws -> (ServeCommand, ServeSettings.Resolved) {
        let resolved = try ServeSettings.resolve(arguments, environment: ProcessInfo.processInfo.environment)
        do {
            return (try ServeCommand.parse(resolved.arguments), resolved)
        } catch {
            throw ServeSettings.Invalid(description: ServeCommand.message(for: error))
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration uwf serve would use; exit 1 with the first problem.",
            discussion: "Takes the same flags as uwf serve, e.g. uwf config check --config config/uwf.yaml --port 9090."
        )
        @Argument(parsing: .allUnrecognized, help: "uwf serve's flags (--config FILE among them).") var serveArguments: [String] = []

        func run() async throws {
            do {
                _ = try ConfigCommand.resolve(serveArguments)
                print("configuration is valid")
            } catch {
                FileHandle.standardError.write(Data("uwf: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Print: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the configuration as YAML, each value with where it came from (secrets masked).",
            discussion: "Takes the same flags as uwf serve."
        )
        @Flag(help: "The values uwf serve would run with (the only form for now).") var effective = false
        @Argument(parsing: .allUnrecognized, help: "uwf serve's flags (--config FILE among them).") var serveArguments: [String] = []

        func run() async throws {
            do {
                let (command, resolved) = try ConfigCommand.resolve(serveArguments)
                print(ServeSettings.effectiveYAML(command, sources: resolved.sources), terminator: "")
            } catch {
                FileHandle.standardError.write(Data("uwf: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Reference: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every option as a Markdown table: file key, flag, environment variable, default (docs/operations.md)."
        )

        func run() async throws {
            let defaults = try ServeCommand.parse([])
            print("| File key | Flag | Environment | Default |")
            print("|---|---|---|---|")
            for option in ServeSettings.options {
                let flag = option.kind == .toggle ? "`--\(option.flag)` / `--no-\(option.flag)`" : "`--\(option.flag)`"
                let value = option.value(defaults).map { $0.isEmpty ? "(none)" : "`\($0)`" } ?? "(none)"
                print("| `\(option.key)` | \(flag) | `\(option.environment)` | \(value) |")
            }
        }
    }
}
