import Testing
@testable import IPOPSignal

@Suite struct SCRAMTests {
    // RFC 5802 §5, user "user", password "pencil".
    let clientNonce = "fyko+d2lbbFgONRv9qkxdawL"
    let serverFirst = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    let clientFinal = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    let serverFinal = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

    @Test func rfc5802ExampleByteForByte() throws {
        var c = SCRAMSHA1Client(username: "user", password: "pencil", clientNonce: clientNonce)
        #expect(Array(c.clientFirstMessage.utf8) == Array("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL".utf8))
        #expect(c.clientFirstMessageBare == "n=user,r=fyko+d2lbbFgONRv9qkxdawL")
        let final = try c.respond(toServerFirst: serverFirst)
        #expect(Array(final.utf8) == Array(clientFinal.utf8))
        try c.verifyServerFinal(serverFinal)
    }

    @Test func wrongServerSignatureIsRejected() throws {
        var c = SCRAMSHA1Client(username: "user", password: "pencil", clientNonce: clientNonce)
        _ = try c.respond(toServerFirst: serverFirst)
        #expect(throws: SASLError.serverSignatureMismatch) { try c.verifyServerFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=") }
        #expect(throws: SASLError.serverError("invalid-proof")) { try c.verifyServerFinal("e=invalid-proof") }
        // Another password gives another proof.
        var d = SCRAMSHA1Client(username: "user", password: "pencil2", clientNonce: clientNonce)
        #expect(try d.respond(toServerFirst: serverFirst) != clientFinal)
        #expect(throws: SASLError.serverSignatureMismatch) { try d.verifyServerFinal(serverFinal) }
    }

    @Test func hostileServerFirstMessages() {
        func attempt(_ s: String) -> SASLError? {
            var c = SCRAMSHA1Client(username: "user", password: "pencil", clientNonce: clientNonce)
            do { _ = try c.respond(toServerFirst: s); return nil } catch { return error }
        }
        #expect(attempt("r=someoneElsesNonce,s=QSXCR+Q6sek8bf92,i=4096") == .nonceMismatch)
        #expect(attempt("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096") == .nonceMismatch)
        #expect(attempt("m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096") == .unsupportedExtension)
        #expect(attempt("r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=2000000000") == .iterationCountOutOfRange(2_000_000_000))
        #expect(attempt("r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=0") == .iterationCountOutOfRange(0))
        #expect(attempt("r=fyko+d2lbbFgONRv9qkxdawLx,s=!!!,i=4096") == .malformedChallenge("salt"))
        #expect(attempt("r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=x") == .malformedChallenge("iteration count"))
        #expect(attempt("garbage") != nil)
        #expect(attempt("") != nil)
        let c = SCRAMSHA1Client(username: "user", password: "pencil", clientNonce: clientNonce)
        #expect(throws: SASLError.self) { try c.verifyServerFinal(serverFinal) }
    }

    @Test func usernameEscapingAndRandomNonce() {
        #expect(SCRAMSHA1Client.saslName("a=b,c") == "a=3Db=2Cc")
        let a = SCRAMSHA1Client(username: "u", password: "p")
        let b = SCRAMSHA1Client(username: "u", password: "p")
        #expect(a.clientNonce != b.clientNonce)
        #expect(a.clientNonce.count == 32)
    }

    @Test func plainMessage() {
        #expect(saslPlainMessage(username: "node1", password: "secret") == "AG5vZGUxAHNlY3JldA==")
    }
}
