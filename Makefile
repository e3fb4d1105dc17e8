# The two commands a fresh machine needs: `make run` and `make test`.
.PHONY: run test build fuzz screenshot

run:
	go run ./cmd/parley serve

# -p 1: one package at a time. The browser, NAT and media tests run real
# calls, and two such packages at once on a 2-core machine starve each
# other's media timing.
test:
	go test -count=1 -p 1 -timeout 20m ./...

build:
	go build -o bin/parley ./cmd/parley

# A short fuzzing pass over every parser of outside input (20 s each).
fuzz:
	go test ./internal/signaling -run '^$$' -fuzz FuzzDecodeClient -fuzztime 20s
	go test ./internal/room -run '^$$' -fuzz FuzzRelay -fuzztime 20s
	go test ./internal/media -run '^$$' -fuzz FuzzParseFragment -fuzztime 20s
	go test ./internal/media -run '^$$' -fuzz FuzzParseOffer -fuzztime 20s
	go test ./internal/source -run '^$$' -fuzz FuzzOggStream -fuzztime 20s
	go test ./internal/source -run '^$$' -fuzz FuzzIVF -fuzztime 20s
	go test ./internal/media -run '^$$' -fuzz FuzzForwardRTP -fuzztime 20s
	go test ./internal/jointoken -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s
	go test ./internal/jointoken -run '^$$' -fuzz FuzzParseOrigin -fuzztime 20s
	go test ./internal/media -run '^$$' -fuzz FuzzHandleRTCP -fuzztime 20s
	go test ./internal/studio -run '^$$' -fuzz FuzzSniff -fuzztime 20s
	go test ./internal/studio -run '^$$' -fuzz FuzzParseLevels -fuzztime 20s
	go test ./internal/account -run '^$$' -fuzz FuzzParseMeetingCode -fuzztime 20s
	go test ./internal/account -run '^$$' -fuzz FuzzParseInviteOptions -fuzztime 20s
	go test ./internal/account -run '^$$' -fuzz FuzzParseAPIKey -fuzztime 20s
	go test ./internal/api -run '^$$' -fuzz FuzzPageParams -fuzztime 20s
	go test ./internal/api -run '^$$' -fuzz FuzzIfMatch -fuzztime 20s
	go test ./internal/clientip -run '^$$' -fuzz FuzzClient -fuzztime 20s
	go test ./internal/mail -run '^$$' -fuzz FuzzParseURL -fuzztime 20s
	go test ./internal/pairing -run '^$$' -fuzz FuzzDecode -fuzztime 20s
	go test ./internal/recording -run '^$$' -fuzz FuzzKeyframe -fuzztime 20s
	go test ./internal/cluster -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 20s
	go test ./internal/recording -run '^$$' -fuzz FuzzOggPages -fuzztime 20s
	go test ./internal/recording -run '^$$' -fuzz FuzzScanBlocks -fuzztime 20s
	go test ./internal/web -run '^$$' -fuzz FuzzSafeNext -fuzztime 20s
	go test ./internal/webhook -run '^$$' -fuzz FuzzParseSignature -fuzztime 20s
	go test ./internal/webhook -run '^$$' -fuzz FuzzParseURL -fuzztime 20s
	go test ./internal/loadtest -run '^$$' -fuzz FuzzParseMetrics -fuzztime 20s

# Regenerates docs/images/call.png (desktop, also the landing page's
# picture), call-phone.png and studio.png from the browser tests.
screenshot:
	go test ./internal/e2e -run 'TestCallRoom|TestStudioLiveOverdub' -count=1 -update-screenshot
