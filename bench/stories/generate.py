#!/usr/bin/env python3
"""Writes fixtures/stories/labelled.json: a labelled set for story clustering. Stories are
crypto-news events, each told by 2-5 outlets in their own headline and lead (different
templates, word choices, number formats, extra context and boilerplate), minutes to hours
apart; beside them, hard negatives: recurring series days apart, and different events that
share a company, an exchange or a protocol on the same day. Names of projects and people are
invented, so that no real party is said to have done what the set says.

    python3 bench/stories/generate.py [--seed 7] [--stories 160] [--negatives 120]

Each item: {"story": label, "outlet", "title", "body", "link", "minutes"} where minutes
count from the set's start. Items with the same label are one story.
"""
import argparse, json, os, random, re

OUTLETS = ["CoinDesk", "Decrypt", "The Block", "Cointelegraph", "Blockworks", "DL News",
           "CryptoSlate", "Bitcoin Magazine"]
EXCHANGES = ["Binance", "Coinbase", "Kraken", "OKX", "Bybit", "Bitstamp", "Gemini", "Upbit",
             "Bitget", "KuCoin"]
CHAINS = ["Ethereum", "Solana", "Arbitrum", "Base", "BNB Chain", "Avalanche", "Polygon"]
REGULATORS = [("SEC", "Securities and Exchange Commission"), ("CFTC", "Commodity Futures Trading Commission"),
              ("FCA", "Financial Conduct Authority"), ("MAS", "Monetary Authority of Singapore"),
              ("BaFin", "German financial regulator BaFin"), ("ASIC", "Australian Securities and Investments Commission")]
FUNDS = ["Paradigm", "a16z crypto", "Pantera Capital", "Multicoin Capital", "Polychain Capital",
         "Electric Capital", "Dragonfly", "Framework Ventures"]
COUNTRIES = ["Brazil", "South Korea", "Thailand", "Kenya", "Poland", "Argentina", "Vietnam", "Turkey",
             "Chile", "Nigeria", "Portugal", "Malaysia", "Peru", "Ghana", "Norway", "Mexico",
             "Colombia", "Egypt", "Finland", "Greece", "Hungary", "Indonesia", "Ireland", "Israel",
             "Jamaica", "Latvia", "Morocco", "Nepal", "Pakistan", "Romania", "Rwanda", "Uruguay"]
ASSETS = [("Bitcoin", "BTC"), ("Ether", "ETH"), ("Solana", "SOL"), ("XRP", "XRP")]
# Invented names, made from parts so that two stories rarely share one by chance (real news
# has thousands of names; a pool of ten makes every CEO story look alike).
SYL = ["Ar", "Bel", "Cor", "Dra", "El", "Fen", "Gal", "Hel", "Ist", "Jor", "Kel", "Lum", "Mar",
       "Nor", "Or", "Pyx", "Quin", "Ros", "Sol", "Tess", "Ul", "Var", "Wyn", "Xan", "Yor", "Zeph"]
END = ["ion", "ara", "ix", "enth", "ora", "ane", "iad", "wind", "elle", "oth", "ine", "ar"]
FIRST = ["Maren", "Ilya", "Sofia", "Tomas", "Lena", "Rafael", "Noor", "Oskar", "Priya", "Dario",
         "Aiko", "Bruno", "Chloe", "Dmitri", "Esra", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kaito", "Leila", "Mateo", "Nadia", "Omar", "Paloma", "Quentin", "Rosa", "Stefan", "Talia"]
LAST = ["Holt", "Varga", "Brandt", "Okafor", "Castell", "Quint", "Hadid", "Lind", "Mehta", "Vesco",
        "Arden", "Bishara", "Calloway", "Duarte", "Ekholm", "Falk", "Grieve", "Haskell", "Ivers", "Jansen",
        "Kovacs", "Laurent", "Moreau", "Nakamura", "Oyelaran", "Petrov", "Rinaldi", "Sandoval",
        "Takahashi", "Ulrich", "Voss", "Whitfield", "Yilmaz", "Zielinski", "Abara", "Brennan"]
KINDS_CO = ["Custody", "Digital", "Capital", "Mining", "Pay", "Labs", "Exchange", "Brokerage",
            "Markets", "Trust", "Payments", "Holdings"]
KINDS_PROTO = ["Finance", "Swap", "Lend", "Vault", "Bridge", "DEX", "Yield", "Perps"]


# Countries are drawn without replacement while they last: two different laws passed in one
# country the same fortnight would be one story to any reader.
COUNTRY_BAG = []


def coined(r):
    return r.choice(SYL) + r.choice(END)


def token(r):
    name = coined(r)
    return (name, (name[:3] + r.choice("XRNT")).upper())


def company(r):
    return f"{coined(r)} {r.choice(KINDS_CO)}"


def protocol(r):
    return f"{coined(r)} {r.choice(KINDS_PROTO)}"


def person(r):
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


BOILER = ["The post {t} appeared first on {o}.", "Subscribe to our newsletter for daily updates.",
          "Follow us on X for the latest.", "This article is not financial advice.", ""]


def money(r, v):
    """One amount in one of the ways outlets write it."""
    if v >= 1e9:
        x = v / 1e9
        return r.choice([f"${x:.1f} billion", f"${x:.1f}B", f"${x:.2f} billion", f"${x:.1f}bn"])
    x = v / 1e6
    return r.choice([f"${x:.0f} million", f"${x:.0f}M", f"${x:.1f} million", f"${x:.0f}m"])


def event(r, kind, anchor=None):
    """The facts of one event, and per-outlet ways to tell it: (title templates, lead templates).
    `anchor` forces some facts (the exchange, protocol, company, chain) to given values."""
    f = {"ex": r.choice(EXCHANGES), "tok": token(r), "proto": protocol(r),
         "chain": r.choice(CHAINS), "reg": r.choice(REGULATORS), "co": company(r),
         "co2": company(r), "fund": r.choice(FUNDS), "who": person(r),
         "country": COUNTRY_BAG.pop() if COUNTRY_BAG else r.choice(COUNTRIES), "asset": r.choice(ASSETS),
         "amt": round(10 ** r.uniform(6.3, 8.8), -5),
         "pct": r.randint(6, 48), "n": r.choice([120, 450, 1200, 2500, 8000, 15000]) + r.randint(0, 99),
         "years": r.randint(2, 25), "day": r.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])}
    f.update(anchor or {})
    f["tokname"], f["tic"] = f["tok"]
    f["regs"], f["regl"] = f["reg"]
    f["an"], f["at"] = f["asset"]
    T = {
        "listing": (["{ex} to list {tokname} ({tic}) for spot trading",
                     "{tic} jumps {pct}% after {ex} listing announcement",
                     "{ex} adds {tokname} token, trading opens {day}",
                     "{tokname} set to debut on {ex} as {tic} rallies",
                     "{ex} will support {tic} spot pairs from {day}"],
                    ["{ex} said it will list {tokname} ({tic}), with trading against USDT opening on {day}.",
                     "The {tic} token rose {pct}% after {ex} announced that {tokname} would join its spot market on {day}.",
                     "Traders pushed {tokname} up {pct}% once {ex} confirmed a {tic} listing, effective {day}.",
                     "{ex} is adding {tokname}, the exchange announced, sending {tic} {pct}% higher."]),
        "hack": (["{proto} exploited for {amt} on {chain}",
                  "Hackers drain {amt} from {chain} protocol {proto}",
                  "{proto} suffers {amt} exploit, pauses contracts",
                  "Attacker steals {amt} in {proto} breach",
                  "{chain} DeFi protocol {proto} loses {amt} to hack"],
                 ["{proto}, a lending protocol on {chain}, lost about {amt} after an attacker abused a price oracle, the team said.",
                  "An exploit drained roughly {amt} from {proto} on {chain}; the developers paused the contracts and are tracing the funds.",
                  "Security firms flagged suspicious transactions at {proto}, where {amt} was taken from liquidity pools on {chain}.",
                  "{proto} halted deposits after hackers moved {amt} out of its {chain} vaults, according to on-chain data."]),
        "lawsuit": (["{regs} sues {co} over unregistered crypto offering",
                     "{co} hit with {regs} lawsuit alleging securities violations",
                     "{regl} files charges against {co}",
                     "{regs} takes {co} to court, seeks {amt} in penalties",
                     "{co} faces {regs} complaint over token sales"],
                    ["The {regl} sued {co} on {day}, alleging the firm sold unregistered securities and seeking {amt} in penalties.",
                     "{co} is accused by the {regs} of raising funds through an unregistered token offering; the regulator wants {amt}.",
                     "In a complaint filed {day}, the {regs} said {co} misled investors and asked the court for {amt} in fines.",
                     "{co} said it will fight the {regs} case, which seeks {amt} over alleged securities law breaches."]),
        "funding": (["{co} raises {amt} led by {fund}",
                     "{fund} leads {amt} round in {co}",
                     "{co} closes {amt} Series B with {fund} backing",
                     "Crypto startup {co} secures {amt} from {fund}, others",
                     "{co} lands {amt} to expand, {fund} leads"],
                    ["{co} has raised {amt} in a round led by {fund}, the company said, to expand its custody business.",
                     "{fund} led a {amt} investment in {co}, which plans to hire engineers and seek new licenses.",
                     "The {amt} raise for {co}, headed by {fund}, values the firm at several times its last round.",
                     "{co} announced {amt} in new funding from {fund} and existing backers on {day}."]),
        "acquisition": (["{co} acquires {co2} for {amt}",
                         "{co} to buy {co2} in {amt} deal",
                         "{co2} sold to {co} for {amt}",
                         "{co} snaps up {co2}, paying {amt}",
                         "{co} agrees {amt} takeover of {co2}"],
                        ["{co} agreed to acquire {co2} for {amt} in cash and stock, the companies said on {day}.",
                         "The deal gives {co} the licenses held by {co2}; terms value it at {amt}.",
                         "{co} will pay {amt} for {co2}, its largest acquisition, pending regulatory approval.",
                         "{co2} is being bought by {co}, which said the {amt} purchase adds thousands of customers."]),
        "treasury": (["{co} buys {n} {at} for {amt}",
                      "{co} adds {n} {an} to balance sheet",
                      "{co} now holds more {at} after {amt} purchase",
                      "{co} spends {amt} on {n} {at}",
                      "Treasury firm {co} scoops up {n} {an}"],
                     ["{co} bought {n} {at} for about {amt}, according to a filing on {day}.",
                      "The company said it acquired {n} {an} worth {amt}, funded by a share sale.",
                      "{co} disclosed a purchase of {n} {at} at a cost of {amt}, extending its treasury strategy.",
                      "A {day} filing shows {co} spent {amt} on {n} more {an}."]),
        "exec": (["{who} steps down as {co} CEO",
                  "{co} chief executive {who} resigns",
                  "{who} exits {co}, board names interim chief",
                  "{co} CEO {who} to leave after {years} years",
                  "{co} announces departure of CEO {who}"],
                 ["{who} is stepping down as chief executive of {co} after {years} years, the company said on {day}.",
                  "{co} said {who} will leave the top job; the board has started a search for a successor.",
                  "After {years} years leading {co}, {who} resigned, according to a statement, effective immediately.",
                  "{co}'s board accepted the resignation of {who}, who ran the firm for {years} years."]),
        "law": (["{country} passes law to regulate crypto exchanges",
                 "{country} lawmakers approve crypto licensing bill",
                 "New {country} crypto law requires exchange licenses",
                 "{country} parliament votes through digital asset rules",
                 "Crypto firms in {country} face licensing under new law"],
                ["Lawmakers in {country} approved a bill that requires crypto exchanges to hold licenses and keep customer assets separate.",
                 "{country}'s parliament voted {n} to pass digital asset rules, giving exchanges a year to obtain licenses.",
                 "The new law in {country} puts crypto platforms under the central bank and bans unlicensed trading services.",
                 "Exchanges operating in {country} will need a license under legislation passed on {day}."]),
        "arrest": (["{who} sentenced to {years} years in crypto fraud case",
                    "Court jails {who} for {years} years over crypto scheme",
                    "{who} gets {years}-year sentence for {amt} crypto fraud",
                    "{years} years in prison for {who}, founder of collapsed {co}",
                    "Judge sentences {co} founder {who} to {years} years"],
                   ["{who}, who founded {co}, was sentenced to {years} years in prison for defrauding investors of {amt}.",
                    "A federal judge handed {who} a {years}-year term after a jury found the {co} founder guilty of fraud.",
                    "Prosecutors said {who} took {amt} from {co} customers; the court imposed {years} years.",
                    "{co} founder {who} will serve {years} years for a fraud that cost investors {amt}."]),
        "upgrade": (["{chain} activates {tokname} upgrade on mainnet",
                     "{tokname} upgrade goes live on {chain}",
                     "{chain} completes {tokname} hard fork",
                     "Developers ship {tokname} upgrade to {chain} mainnet",
                     "{chain}'s {tokname} upgrade cuts fees for users"],
                    ["The {tokname} upgrade went live on {chain} on {day}, lowering fees for rollups by about {pct}%.",
                     "{chain} developers activated the {tokname} hard fork, which changes how validators are paid.",
                     "After months of testing, the {tokname} upgrade reached {chain} mainnet with no reported issues.",
                     "Fees on {chain} fell {pct}% after the {tokname} upgrade, early data showed."]),
        "etf": (["{co} files for spot {an} ETF",
                 "{co} seeks approval for {at} exchange-traded fund",
                 "{co} joins race for {an} ETF with new filing",
                 "Spot {at} ETF application submitted by {co}",
                 "{co} applies to list {an} fund on US exchange"],
                ["{co} filed with the SEC to launch a spot {an} exchange-traded fund, according to documents published {day}.",
                 "The application from {co} would let investors buy {at} exposure through a regulated fund.",
                 "{co} became the latest firm to seek a spot {an} ETF, submitting its S-1 on {day}.",
                 "A filing shows {co} plans a {at} ETF that would hold the asset directly with a custodian."]),
        "stablecoin": (["{co} launches dollar stablecoin on {chain}",
                        "{co} debuts USD-pegged token",
                        "{co} enters stablecoin market with {chain} launch",
                        "New stablecoin from {co} goes live on {chain}",
                        "{co} rolls out regulated stablecoin"],
                       ["{co} launched a dollar-backed stablecoin on {chain}, with reserves held in Treasury bills.",
                        "The token issued by {co} is redeemable one-to-one for dollars and will first trade on {chain}.",
                        "{co} said its stablecoin is fully backed and audited monthly; it starts on {chain}.",
                        "{co} is the latest payments firm to issue a stablecoin, debuting the token on {chain} on {day}."]),
    }
    return f, T[kind]


KINDS = ["listing", "hack", "lawsuit", "funding", "acquisition", "treasury", "exec", "law",
         "arrest", "upgrade", "etf", "stablecoin"]
CONTEXT = ["Prices across the market were mixed on the day.", "The news comes amid a busy month for the industry.",
           "Analysts said the move had been expected for weeks.", "A spokesperson declined to comment further.",
           "Trading volumes rose in the hours after the announcement.", "Regulators have stepped up scrutiny this year.",
           "The firm did not respond to a request for comment.", "Social media reaction was swift."]


def fill(t, f, r):
    amt = money(r, f["amt"])
    return t.format(amt=amt, **{k: v for k, v in f.items() if k != "amt"})


def tell(r, kind, label, start, outlets_n, anchor=None):
    f, (titles, leads) = event(r, kind, anchor)
    outlets = r.sample(OUTLETS, outlets_n)
    ts = r.sample(titles, outlets_n)
    # Each outlet its own lead while there are enough; a fifth repeats one, as wire copy does.
    ls = r.sample(leads, min(outlets_n, len(leads))) + r.sample(leads, max(0, outlets_n - len(leads)))
    items, minutes = [], start
    for i, o in enumerate(outlets):
        title = fill(ts[i], f, r)
        body = [fill(ls[i], f, r)] + r.sample(CONTEXT, r.randint(1, 2))
        b = r.choice(BOILER).format(t=title, o=o)
        if b:
            body.append(b)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        items.append({"story": label, "outlet": o, "title": title, "minutes": minutes,
                      "body": "".join(f"<p>{p}</p>" for p in body),
                      "link": f"https://{o.lower().replace(' ', '')}.example/{label}/{slug}"})
        minutes += r.randint(5, 300)
    return items


def series(r, label, start):
    """A recurring headline: the same words, other numbers, a day apart."""
    an, at = r.choice(ASSETS)
    o = r.choice(OUTLETS)
    price = r.randint(20000, 90000)
    kind = r.choice(["today", "prediction", "wrap"])
    title = {"today": f"{an} price today: {at} {{dir}} to ${{p:,}}",
             "prediction": f"{at} price prediction: can {an} hold ${{p:,}}?",
             "wrap": f"Crypto market wrap: {an} {{dir}} to ${{p:,}}"}[kind]
    out = []
    for day in range(r.randint(2, 4)):
        price = int(price * r.uniform(0.95, 1.05))
        d = r.choice(["rises", "falls", "climbs", "slips"])
        t = title.format(dir=d, p=price)
        out.append({"story": f"{label}-{day}", "outlet": r.choice([o, r.choice(OUTLETS)]), "title": t,
                    "minutes": start + day * 1440 + r.randint(0, 60),
                    "body": f"<p>{an} {d} to ${price:,} as traders weighed ETF flows and macro data.</p>",
                    "link": f"https://{o.lower().replace(' ', '')}.example/{label}/{day}"})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--stories", type=int, default=160)
    ap.add_argument("--negatives", type=int, default=120)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "stories", "labelled.json"))
    a = ap.parse_args()
    r = random.Random(a.seed)
    COUNTRY_BAG.extend(r.sample(COUNTRIES, len(COUNTRIES)))
    items = []
    for i in range(a.stories):
        items += tell(r, KINDS[i % len(KINDS)], f"s{i}", r.randint(0, 14 * 1440), r.randint(2, 5))
    # Hard negatives: the same kind of event about the same exchange, protocol or company on
    # the same day, told once each; series; follow-ups days later.
    n = 0
    while n < a.negatives:
        kind = r.choice(["same-day", "series", "follow-up"])
        start = r.randint(0, 14 * 1440)
        if kind == "series":
            items += series(r, f"n{n}", start)
        elif kind == "same-day":
            # What two different events of a kind share the same day: listings on one
            # exchange, hacks on one chain, suits by one regulator, rounds led by one fund...
            ev, key = r.choice([("listing", "ex"), ("hack", "chain"), ("lawsuit", "reg"),
                                ("funding", "fund"), ("treasury", "asset"), ("etf", "asset"),
                                ("stablecoin", "chain"), ("acquisition", "co"), ("upgrade", "chain")])
            anchor = {key: {"ex": r.choice(EXCHANGES), "chain": r.choice(CHAINS),
                            "reg": r.choice(REGULATORS), "fund": r.choice(FUNDS),
                            "asset": r.choice(ASSETS), "co": company(r)}[key]}
            for k in range(2):
                items += tell(r, ev, f"n{n}-{k}", start + k * r.randint(20, 600), 1, anchor)
        else:
            items += tell(r, r.choice(KINDS), f"n{n}-a", start, 1)
            items += tell(r, r.choice(KINDS), f"n{n}-b", start + r.randint(4, 7) * 1440, 1)
        n += 1
    with open(a.out, "w") as fh:
        json.dump(items, fh, indent=0)
    print(f"{len(items)} items, {len({i['story'] for i in items})} stories -> {a.out}")


if __name__ == "__main__":
    main()
