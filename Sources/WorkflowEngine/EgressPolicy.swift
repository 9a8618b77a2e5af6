import Foundation
import Synchronization
import WorkflowPrimitive

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One rule of an egress list: a host name, a `*.suffix` pattern (the suffix and every name under it) or a CIDR
/// (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
public enum EgressRule: Sendable, Hashable, CustomStringConvertible {
    case host(String)
    case suffix(String)
    case network(IPNetwork)

    public init?(_ text: String) {
        let rule = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !rule.isEmpty, rule.utf8.count <= 253 else { return nil }
        if let network = IPNetwork(rule) {
            self = .network(network)
        } else if rule.hasPrefix("*.") {
            let suffix = String(rule.dropFirst(2))
            guard Self.isHostName(suffix) else { return nil }
            self = .suffix(suffix)
        } else if Self.isHostName(rule) {
            self = .host(rule)
        } else {
            return nil
        }
    }

    static func isHostName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 253
            && s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                (1...63).contains(label.utf8.count)
                    && label.utf8.allSatisfy { $0 == 0x2D || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }
            }
    }

    /// Whether the rule covers the host name `host` or one of its addresses.
    func matches(host: String, addresses: [IPAddress]) -> Bool {
        switch self {
        case .host(let name): host == name
        case .suffix(let suffix): host == suffix || host.hasSuffix("." + suffix)
        case .network(let network): addresses.contains { network.contains($0) }
        }
    }

    public var description: String {
        switch self {
        case .host(let name): name
        case .suffix(let suffix): "*." + suffix
        case .network(let network): network.description
        }
    }
}

/// An IPv4 or IPv6 address as bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    /// Parses a numeric address exactly as written (`inet_pton`: no `127.1` or `0x7f.1` shorthands; those are names
    /// the resolver turns into addresses, and are checked as the addresses they become).
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
        normalize()
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
        normalize()
    }

    /// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it carries.
    private mutating func normalize() {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}

/// A network: an address and a prefix length.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = bits
        }
        self.address = address
    }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.bytes.count == address.bytes.count else { return false }
        var remaining = prefix
        for (a, b) in zip(address.bytes, other.bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    public var description: String { "\(address)/\(prefix)" }
}

/// Where `http_request` steps may go. Checked on the addresses a host name resolves to, and again for every redirect.
///
/// The order: the tenant's deny list, then its allow list, then the node's refusals (always refused unless a tenant
/// allows them explicitly): link-local and cloud metadata addresses, unspecified, multicast and broadcast addresses,
/// and this node's own API port on any local address. With `publicOnly` (`--egress public-only`) loopback and private
/// networks are refused too; the default (`--egress local`) lets them through, so stand-ins on 127.0.0.1 work.
public struct EgressPolicy: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case local
        case publicOnly = "public-only"
    }

    public var mode: Mode
    /// Ports of this node's own API (refused on loopback, unspecified and this host's addresses); filled in once the
    /// server listens (`--port 0` picks the port then).
    public var ownPorts: OwnPorts
    /// Node-wide extra refusals (`--egress-deny`).
    public var deny: [EgressRule]

    public init(mode: Mode = .local, ownPorts: OwnPorts = OwnPorts(), deny: [EgressRule] = []) {
        self.mode = mode
        self.ownPorts = ownPorts
        self.deny = deny
    }

    static let alwaysRefused: [(String, String)] = [
        ("169.254.0.0/16", "link-local and cloud metadata addresses"), ("fe80::/10", "link-local addresses"),
        ("0.0.0.0/8", "unspecified addresses"), ("::/128", "unspecified addresses"), ("224.0.0.0/4", "multicast addresses"),
        ("ff00::/8", "multicast addresses"), ("255.255.255.255/32", "broadcast"), ("100.100.100.200/32", "cloud metadata addresses"),
        ("fd00:ec2::254/128", "cloud metadata addresses"),
    ]
    static let privateNetworks: [(String, String)] = [
        ("127.0.0.0/8", "loopback"), ("::1/128", "loopback"), ("10.0.0.0/8", "private networks"), ("172.16.0.0/12", "private networks"),
        ("192.168.0.0/16", "private networks"), ("100.64.0.0/10", "shared address space"), ("fc00::/7", "unique local addresses"),
    ]
    static let loopback = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!, IPNetwork("0.0.0.0/8")!, IPNetwork("::/128")!]

    /// Nil when `host` (resolved to `addresses`) on `port` may be called under the tenant's lists; otherwise why not.
    public func refusal(host: String, port: Int, addresses: [IPAddress], allow: [EgressRule], deny tenantDeny: [EgressRule]) -> String? {
        let host = host.lowercased()
        if let rule = tenantDeny.first(where: { $0.matches(host: host, addresses: addresses) }) {
            return "\(host) is refused by the tenant's egress rule '\(rule)'"
        }
        if allow.contains(where: { $0.matches(host: host, addresses: addresses) }) { return nil }
        if let rule = deny.first(where: { $0.matches(host: host, addresses: addresses) }) {
            return "\(host) is refused by the node's egress rule '\(rule)'"
        }
        var refused = Self.alwaysRefused
        if mode == .publicOnly { refused += Self.privateNetworks }
        for (cidr, what) in refused {
            let network = IPNetwork(cidr)!
            if let address = addresses.first(where: network.contains) {
                return "\(host) resolves to \(address), in \(what) (\(cidr)), which http_request steps may not call"
            }
        }
        if ownPorts.contains(port), addresses.contains(where: { a in Self.loopback.contains { $0.contains(a) } || LocalAddresses.all.contains(a) }) {
            return "\(host):\(port) is this server's own API, which http_request steps may not call"
        }
        return nil
    }
}

/// The ports this node's API listens on, known once it listens.
public final class OwnPorts: Sendable {
    private let ports = Mutex<Set<Int>>([])

    public init(_ ports: Set<Int> = []) { self.ports.withLock { $0 = ports } }

    public func add(_ port: Int) { ports.withLock { _ = $0.insert(port) } }

    public func contains(_ port: Int) -> Bool { ports.withLock { $0.contains(port) } }
}

/// The addresses of this host's interfaces, read once.
enum LocalAddresses {
    static let all: Set<IPAddress> = {
        var result: Set<IPAddress> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return result }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr, let ip = Resolver.address(address) { result.insert(ip) }
            cursor = entry.pointee.ifa_next
        }
        return result
    }()
}

/// A continuation resumed by whichever answer comes first (the lookup, the timeout, cancellation).
private final class OneAnswer: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<[IPAddress], Never>)
        case answered([IPAddress])
        case done
    }

    private let state = Mutex<State>(.empty)

    func set(_ c: CheckedContinuation<[IPAddress], Never>) {
        let answer = state.withLock { s -> [IPAddress]? in
            if case .answered(let a) = s {
                s = .done
                return a
            }
            s = .waiting(c)
            return nil
        }
        if let answer { c.resume(returning: answer) }
    }

    func finish(_ result: [IPAddress]) {
        let waiting = state.withLock { s -> CheckedContinuation<[IPAddress], Never>? in
            switch s {
            case .empty:
                s = .answered(result)
                return nil
            case .waiting(let c):
                s = .done
                return c
            case .answered, .done:
                return nil
            }
        }
        waiting?.resume(returning: result)
    }
}

/// Resolves host names off the cooperative pool (getaddrinfo blocks).
enum Resolver {
    /// The addresses `host` resolves to; empty when it does not resolve within `timeout` or the task is cancelled
    /// (getaddrinfo blocks and cannot be interrupted: its thread finishes on its own, nobody waits for it).
    static func resolve(_ host: String, timeout: Duration = .seconds(10)) async -> [IPAddress] {
        if let literal = IPAddress(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) { return [literal] }
        let once = OneAnswer()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[IPAddress], Never>) in
                once.set(continuation)
                if Task.isCancelled { once.finish([]) }
                let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.finish([]) }
                // getaddrinfo blocks: on a thread of its own, never on the dispatch pool the cooperative executor uses.
                Thread.detachNewThread { once.finish(lookup(host)) }
            }
        } onCancel: {
            once.finish([])
        }
    }

    private static func lookup(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let raw = entry.pointee.ai_addr, let ip = Resolver.address(raw) { addresses.append(ip) }
            cursor = entry.pointee.ai_next
        }
        return Array(Set(addresses))
    }

    static func address(_ sockaddr: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(sockaddr.pointee.sa_family) {
        case AF_INET:
            return sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var a = v4.pointee.sin_addr
                return IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) })
            }
        case AF_INET6:
            return sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var a = v6.pointee.sin6_addr
                return IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) })
            }
        default:
            return nil
        }
    }
}
