import ArgumentParser
import Crypto
import Foundation
import IPOPNode
import Logging

@main
struct IPOP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipop",
        abstract: "IP-over-P2P: a peer-to-peer virtual network (switchmode: one Ethernet segment across hosts).",
        subcommands: [Run.self, Status.self, Check.self, GenKey.self, PubKey.self, GenPSK.self])
}

/// One line on stderr, then exit non-zero: what users of `wg` and `ip` expect.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
    return ExitCode(code)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the node in the foreground until SIGINT/SIGTERM.")
    @Option(name: .shortAndLong, help: "Path of the JSON config file.") var config: String

    func run() throws {
        let cfg: Config
        do { cfg = try Config.load(path: config) } catch { throw fail(error.description) }
        let level = cfg.logLevel
        LoggingSystem.bootstrap { label in
            var h = LineLogHandler(label: label)
            h.logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
            return h
        }
        let logger = Logger(label: "ipop")
        let node: Node
        do { node = try Node(config: cfg, logger: logger) } catch { throw fail("ipop: \(error.description)") }
        let path = config
        node.configLoader = { () throws(ConfigError) -> Config in try Config.load(path: path) }
        node.run()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a config file and exit (0: valid).")
    @Option(name: .shortAndLong, help: "Path of the JSON config file.") var config: String

    func run() throws {
        do {
            let cfg = try Config.load(path: config)
            let peers = cfg.overlays.reduce(0) { $0 + $1.peers.count }
            print("config ok: node \(cfg.nodeName), \(cfg.overlays.count) overlay(s), \(peers) peer(s)")
        } catch {
            throw fail(error.description)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show links and MAC tables of the running node.")
    @Option(help: "Control socket of the node.") var socket: String = Config.defaultControlSocket
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let reply: [UInt8]
        do { reply = try ControlClient.request("status", socket: socket) } catch {
            throw fail("ipop status: \(error) (is the node running? see: ipop run --config FILE)")
        }
        if json {
            FileHandle.standardOutput.write(Data(reply))
            return
        }
        guard let report = try? JSONDecoder().decode(StatusReport.self, from: Data(reply)) else {
            throw fail("ipop status: unexpected reply from \(socket)")
        }
        print(report.text(), terminator: "")
    }
}

struct GenKey: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "genkey", abstract: "Print a new base64 X25519 private key.")
    func run() {
        print(Curve25519.KeyAgreement.PrivateKey().rawRepresentation.base64EncodedString())
    }
}

struct PubKey: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pubkey", abstract: "Read a private key on stdin, print its public key.")
    func run() throws {
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        do {
            let key = try KeyCoding.privateKey(base64: input.trimmingCharacters(in: .whitespacesAndNewlines), path: "stdin")
            print(key.publicKey.rawRepresentation.base64EncodedString())
        } catch {
            throw fail("ipop pubkey: stdin is not a base64 32-byte private key (make one with: ipop genkey)")
        }
    }
}

struct GenPSK: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "genpsk", abstract: "Print a new base64 pre-shared key for an overlay's psk.")
    func run() {
        print(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString())
    }
}
