"""ISO 3166-1 alpha-2 country codes: from a code, an English name, or a domain's TLD.

Pure data and lookups, no I/O. Providers give countries as names ("united states" from People
Data Labs, "United States" from Apollo); the project stores the alpha-2 code (`US`).
"""

from __future__ import annotations

import unicodedata

# code: English short name | aliases a provider or an export file may use
_TABLE = """
AD:andorra
AE:united arab emirates|uae
AF:afghanistan
AG:antigua and barbuda
AI:anguilla
AL:albania
AM:armenia
AO:angola
AQ:antarctica
AR:argentina
AS:american samoa
AT:austria
AU:australia
AW:aruba
AX:aland islands
AZ:azerbaijan
BA:bosnia and herzegovina
BB:barbados
BD:bangladesh
BE:belgium
BF:burkina faso
BG:bulgaria
BH:bahrain
BI:burundi
BJ:benin
BL:saint barthelemy
BM:bermuda
BN:brunei|brunei darussalam
BO:bolivia|bolivia, plurinational state of
BQ:bonaire, sint eustatius and saba|caribbean netherlands
BR:brazil
BS:bahamas|the bahamas
BT:bhutan
BV:bouvet island
BW:botswana
BY:belarus
BZ:belize
CA:canada
CC:cocos (keeling) islands|cocos islands
CD:democratic republic of the congo|congo, democratic republic of the|dr congo|drc
CF:central african republic
CG:republic of the congo|congo|congo-brazzaville
CH:switzerland
CI:cote d'ivoire|ivory coast
CK:cook islands
CL:chile
CM:cameroon
CN:china|people's republic of china
CO:colombia
CR:costa rica
CU:cuba
CV:cabo verde|cape verde
CW:curacao
CX:christmas island
CY:cyprus
CZ:czechia|czech republic
DE:germany|deutschland
DJ:djibouti
DK:denmark
DM:dominica
DO:dominican republic
DZ:algeria
EC:ecuador
EE:estonia
EG:egypt
EH:western sahara
ER:eritrea
ES:spain
ET:ethiopia
FI:finland
FJ:fiji
FK:falkland islands|falkland islands (malvinas)
FM:micronesia|micronesia, federated states of
FO:faroe islands
FR:france
GA:gabon
GB:united kingdom|uk|great britain|britain|england|scotland|wales|northern ireland
GD:grenada
GE:georgia
GF:french guiana
GG:guernsey
GH:ghana
GI:gibraltar
GL:greenland
GM:gambia|the gambia
GN:guinea
GP:guadeloupe
GQ:equatorial guinea
GR:greece
GS:south georgia and the south sandwich islands
GT:guatemala
GU:guam
GW:guinea-bissau
GY:guyana
HK:hong kong|hong kong sar
HM:heard island and mcdonald islands
HN:honduras
HR:croatia
HT:haiti
HU:hungary
ID:indonesia
IE:ireland
IL:israel
IM:isle of man
IN:india
IO:british indian ocean territory
IQ:iraq
IR:iran|iran, islamic republic of
IS:iceland
IT:italy
JE:jersey
JM:jamaica
JO:jordan
JP:japan
KE:kenya
KG:kyrgyzstan
KH:cambodia
KI:kiribati
KM:comoros
KN:saint kitts and nevis
KP:north korea|korea, democratic people's republic of
KR:south korea|korea|republic of korea|korea, republic of
KW:kuwait
KY:cayman islands
KZ:kazakhstan
LA:laos|lao people's democratic republic
LB:lebanon
LC:saint lucia
LI:liechtenstein
LK:sri lanka
LR:liberia
LS:lesotho
LT:lithuania
LU:luxembourg
LV:latvia
LY:libya
MA:morocco
MC:monaco
MD:moldova|moldova, republic of
ME:montenegro
MF:saint martin
MG:madagascar
MH:marshall islands
MK:north macedonia|macedonia
ML:mali
MM:myanmar|burma
MN:mongolia
MO:macao|macau
MP:northern mariana islands
MQ:martinique
MR:mauritania
MS:montserrat
MT:malta
MU:mauritius
MV:maldives
MW:malawi
MX:mexico
MY:malaysia
MZ:mozambique
NA:namibia
NC:new caledonia
NE:niger
NF:norfolk island
NG:nigeria
NI:nicaragua
NL:netherlands|the netherlands|holland
NO:norway
NP:nepal
NR:nauru
NU:niue
NZ:new zealand
OM:oman
PA:panama
PE:peru
PF:french polynesia
PG:papua new guinea
PH:philippines
PK:pakistan
PL:poland
PM:saint pierre and miquelon
PN:pitcairn|pitcairn islands
PR:puerto rico
PS:palestine|palestine, state of
PT:portugal
PW:palau
PY:paraguay
QA:qatar
RE:reunion
RO:romania
RS:serbia
RU:russia|russian federation
RW:rwanda
SA:saudi arabia
SB:solomon islands
SC:seychelles
SD:sudan
SE:sweden
SG:singapore
SH:saint helena|saint helena, ascension and tristan da cunha
SI:slovenia
SJ:svalbard and jan mayen
SK:slovakia
SL:sierra leone
SM:san marino
SN:senegal
SO:somalia
SR:suriname
SS:south sudan
ST:sao tome and principe
SV:el salvador
SX:sint maarten
SY:syria|syrian arab republic
SZ:eswatini|swaziland
TC:turks and caicos islands
TD:chad
TF:french southern territories
TG:togo
TH:thailand
TJ:tajikistan
TK:tokelau
TL:timor-leste|east timor
TM:turkmenistan
TN:tunisia
TO:tonga
TR:turkey|turkiye
TT:trinidad and tobago
TV:tuvalu
TW:taiwan|taiwan, province of china
TZ:tanzania|tanzania, united republic of
UA:ukraine
UG:uganda
UM:united states minor outlying islands
US:united states|united states of america|usa|u.s.|u.s.a.
UY:uruguay
UZ:uzbekistan
VA:vatican city|holy see|vatican
VC:saint vincent and the grenadines
VE:venezuela|venezuela, bolivarian republic of
VG:british virgin islands|virgin islands, british
VI:u.s. virgin islands|us virgin islands|virgin islands, u.s.
VN:vietnam|viet nam
VU:vanuatu
WF:wallis and futuna
WS:samoa
YE:yemen
YT:mayotte
ZA:south africa
ZM:zambia
ZW:zimbabwe
"""


def _fold(text: str) -> str:
    """Lower-case, accents dropped, whitespace collapsed: 'Côte  d’Ivoire' → "cote d'ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.lower().split())


ISO_CODES: frozenset[str] = frozenset(line.split(":", 1)[0] for line in _TABLE.strip().splitlines())
_BY_NAME: dict[str, str] = {
    _fold(name): line.split(":", 1)[0]
    for line in _TABLE.strip().splitlines()
    for name in line.split(":", 1)[1].split("|")
}

# Country-code TLDs sold and used worldwide as generic names (.io, .ai, .co, .tv, .me, ...):
# a `.io` domain says nothing about where a company is, so no hint is given for these.
_GENERIC = "ac ag ai am bz cc cf co cx fm ga gg gl gq im io la ly me ml ms nu pw sh so st tk to tv"
_GENERIC += " vc ws"
GENERIC_CCTLDS: frozenset[str] = frozenset(_GENERIC.split())


def country_code(value: object) -> str | None:
    """`US`, `us`, `United States`, `united states of america`, `UK` → alpha-2 code, or None."""
    if not isinstance(value, str):
        return None
    text = _fold(value)
    if not text:
        return None
    if len(text) == 2 and text.isalpha():
        code = text.upper()
        if code == "UK":
            return "GB"
        return code if code in ISO_CODES else None
    return _BY_NAME.get(text)


def tld_country(domain: str) -> str | None:
    """The country a domain's TLD names, when it names one: `.de` → DE, `.co.uk` → GB,
    `.com`/`.io`/`.eu` → None. A hint only; nothing else is inferred from a domain."""
    tld = domain.rstrip(".").rsplit(".", 1)[-1].lower()
    if len(tld) != 2 or not tld.isascii() or not tld.isalpha() or tld in GENERIC_CCTLDS:
        return None
    if tld == "uk":
        return "GB"
    code = tld.upper()
    return code if code in ISO_CODES else None
