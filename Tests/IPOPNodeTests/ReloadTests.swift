import Foundation
import Testing
@testable import IPOPNode

/// SIGHUP: which changed keys need a restart (Node+Reload.swift). The same file read twice must
/// report nothing, or every reload would warn for no reason.
@Suite struct ReloadTests {
    let t = ConfigTests()
    let xmpp = #", "xmpp": {"server": "10.0.0.1:5222", "jid": "n@x.test", "password": "pw", "room": "lab@conference.x.test"}"#

    func parse(_ overlay: String = "", top: String = "") throws -> Config {
        try Config.parse(Data(t.config(overlay, top: top).utf8))
    }

    @Test func sameFileTwiceNeedsNoRestart() throws {
        let a = try parse(#", "mtu": 1400, "psk": "KKgJuw2R2uNTr3tjdOuuSNK8zMDyFQTQt0zjqJ9Xh2s=""#, top: xmpp)
        let b = try parse(#", "mtu": 1400, "psk": "KKgJuw2R2uNTr3tjdOuuSNK8zMDyFQTQt0zjqJ9Xh2s=""#, top: xmpp)
        #expect(Node.restartOnlyChanges(from: a, to: b).isEmpty)
        #expect(Node.restartOnlyChanges(from: a.overlays[0], to: b.overlays[0], path: "overlays[0]").isEmpty)
    }

    @Test func restartOnlyKeysAreNamed() throws {
        let a = try parse(top: xmpp)
        let b = try parse(#", "mtu": 1400"#, top: xmpp.replacingOccurrences(of: "\"pw\"", with: "\"pw2\"")
                              + #", "listen_port": 5801"#)
        #expect(Node.restartOnlyChanges(from: a, to: b) == ["listen_port", "xmpp"])
        #expect(Node.restartOnlyChanges(from: a.overlays[0], to: b.overlays[0], path: "overlays[0]") == ["overlays[0].mtu"])
    }
}
