"""The words DMS exports use: column names (English and Quebec French), flags, makes and first names.

Header names are compared squashed: accents dropped, camelCase split, lower case, letters and digits only
(`Cust.First Name` and `CUST_FIRSTNAME` both read `custfirstname`). A digit in a header numbers a
vehicle (`VIN2`, `Veh 2 Year`) unless the name with its digit is itself known (`Address2`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from importer.prepare import composites


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for g in groups for w in g.split())


#: squashed header → target. Targets are mapping fields (`firstName`, `address.zip`, `vin`), `customer_key`,
#: `fullName`, `phone` and `email`.
SYNONYMS: dict[str, frozenset[str]] = {
    "customer_key": _words("custno customerno customernumber custnum custnumber customerid custid customerkey",
                           "custkey customer cust acctno accountno accountnumber account acct clientno",
                           "clientnumber noclient numeroclient idclient codeclient buyerno buyerid dmsid",
                           "dmscustomerno customercode custcode contactid customernbr custnbr nocli nodossier",
                           "customernum custacct"),
    "firstName": _words("firstname first fname fstname givenname prenom custfirstname customerfirstname",
                        "buyerfirstname ownerfirstname firstnm frstname nameFirst namefirst"),
    "middleName": _words("middlename middle mname middleinitial mi midinit initial initiale custmiddlename"),
    "lastName": _words("lastname last lname surname familyname nom nomdefamille nomfamille custlastname",
                       "customerlastname buyerlastname ownerlastname lastnm namelast"),
    "company": _words("company companyname businessname business bizname firm firmname entreprise compagnie",
                      "nomentreprise organization organisation coname busname raisonsociale"),
    "fullName": _words("name fullname customername custname buyername buyer ownername owner nomclient",
                       "nomcomplet client contactname customerfullname nomprenom nameonaccount custnm",
                       "nomducliente nomduclient"),
    "isBusiness": _words("isbusiness businessflag commercialflag iscommercial busflag commercial"),
    "address.line1": _words("address address1 addressline1 addr addr1 street street1 streetaddress",
                            "streetaddress1 adresse adresse1 adresseligne1 line1 mailingaddress homeaddress",
                            "custaddress customeraddress addrline1 address1line rue custaddr1 custaddress1"),
    "address.line2": _words("address2 addressline2 addr2 street2 streetaddress2 adresse2 adresseligne2 line2",
                            "apt suite unit aptsuite addrline2 custaddr2 custaddress2"),
    "address.city": _words("city town ville municipalite cityname custcity localite"),
    "address.state": _words("state st province prov stateprovince stateorprovince statecode provincecode",
                            "custstate region provetat etat custprov"),
    "address.zip": _words("zip zipcode postalcode postal postcode zippostal ziporpostalcode zippostalcode zip5",
                          "codepostal cp custzip postalzip zipcd custpostal custpostalcode"),
    "phone": _words("phone telephone tel phonenumber phoneno ph phnum primaryphone mainphone contactphone",
                    "notel numerodetelephone custphone"),
    "email": _words("email emailaddress mail courriel adressecourriel emailaddr eaddress courrielelectronique",
                    "custemail customeremail emailid adresseemail"),
    "vin": _words("vin vinnumber vinno vehiclevin vehvin niv numerodeserie serialnumber serial",
                  "vehicleidentificationnumber vinnbr fullvin"),
    "vehicleYear": _words("year yr modelyear vehyear vehicleyear annee anneemodele my modelyr caryear vehyr"),
    "vehicleMake": _words("make makename vehmake vehiclemake marque mfr manufacturer brand makedesc",
                          "makedescription carmake"),
    "vehicleModel": _words("model modelname vehmodel vehiclemodel modele modeldesc modeldescription carmodel"),
    "estimatedMileage": _words("mileage miles odometer odo odom mileagein km kms kilometrage kilometres odometre",
                               "currentmileage lastmileage vehmileage vehiclemileage mileageout odometerreading",
                               "vehodom vehodometer"),
    "vehicleTrim": _words("trim series trimlevel vehtrim"),
    "licensePlate": _words("licenseplate plate plateno platenumber tag tagno tagnumber license licenseno",
                           "immatriculation plaque noplaque licplate"),
    "color": _words("color colour couleur extcolor exteriorcolor colorext vehcolor"),
    # Columns holding several fields (prepare/composites.py); their values must agree (suggest.py).
    "address.city_state_zip": _words("citystatezip citystzip csz citystatepostal",
                                     "citystatezipcode cityprovpostal cityprovincepostalcode cityprovincepostal",
                                     "villeprovincecodepostal villeprovcp"),
    "address.one_line": _words("fulladdress addressfull completeaddress fullmailingaddress adressecomplete"),
    "description": _words("vehicle vehicledescription vehdesc vehicledesc vehdescription yearmakemodel ymm",
                          "vehicleinfo vehinfo vehicule descriptionvehicule"),
}
#: squashed phone headers that name their kind
PHONE_LABELS: dict[str, frozenset[str]] = {
    "cell": _words("cellphone cell mobile mobilephone cellular cellularphone cellulaire telcellulaire portable",
                   "mobil cel cellno cellnumber mobilenumber cellph custcell textphone sms cphone mphone mobileph",
                   "telportable custcellphone custmobile cph cellphonenumber"),
    "home": _words("homephone home residence residencephone resphone hphone homeph telmaison teldomicile",
                   "domicile maison telresidence eveningphone homeno homenumber custhomephone rphone hph evephone",
                   "homephonenumber"),
    "work": _words("workphone work businessphone office officephone bureau telbureau travail teltravail wphone",
                   "workph dayphone busphone bizphone worknumber bphone custworkphone custbusphone bph",
                   "workphonenumber"),
}
#: words inside a header that name a phone's kind
_LABEL_WORDS = {"cell": _words("cell cellular cellulaire mobile portable sms text texto cel mobil"),
                "home": _words("home residence res domicile maison evening"),
                "work": _words("work business bus office bureau travail day biz")}
_PHONE_WORDS = _words("phone tel telephone call calls ph cell mobile cellulaire text texto sms dnc appel appels",
                      "appeler telephoner")
_OPT_OUT = _words("block blocked dnc optout unsubscribe unsubscribed suppress suppressed suppression refus",
                  "refuse interdit nocall noemail notext nomail nocontact nosolicit donotcall donotemail",
                  "donottext donotcontact donotmail")
#: what a leading "no" negates ("No Call"), as against "No" for a number ("No client", "No Tel")
_NEGATED = _words("call calls email emails mail text texts sms contact solicit solicitation marketing phone")
_CONSENT = _words("ok okto consent consents consented consentement optin allow allowed permission accepte",
                  "autorise may can")
#: headers that are known not to be a field, so that no value test is asked about them
_NOT_A_FIELD = _words("date dob birthday birthdate created time ro rono invoice amount price balance sale",
                      "salesperson advisor stock deal dealno deliverydate visit lastvisit naissance sales",
                      "salesman manager employee technician type status deldate",
                      "zip4 plus4 zipplus4 zipext")
_FRENCH = _words("prenom nom nomdefamille courriel adresse adresse1 adresse2 ville codepostal niv annee",
                 "marque modele kilometrage odometre telmaison telbureau telcellulaire cellulaire noclient",
                 "numeroclient nomclient province")
_ACCENTED = re.compile(r"[àâçéèêëîïôûùüÿœæ]", re.IGNORECASE)


@dataclass(frozen=True)
class HeaderMatch:
    """What a header name says about its column."""

    #: the target it names (see SYNONYMS), or None for a header known to be something else (a date...)
    target: str | None
    #: the vehicle group a digit in it gives (1 without a digit)
    group: int = 1
    #: a phone's or an email's kind: cell, home, work, or ""
    label: str = ""
    #: "block" (opt-out) or "consent" for a flag column, else ""
    flag: str = ""
    #: the contact a flag is about: "phone", "email", "all" (every phone and email), or "" (none of them)
    contact: str = ""
    french: bool = False


def tokens(header: str) -> list[str]:
    """Lower-case words and numbers of a header, accents dropped, camelCase split."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    plain = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode().casefold()
    return re.findall(r"[a-z]+|[0-9]+", plain)


def _label(words: list[str]) -> str:
    for label, known in _LABEL_WORDS.items():
        if not known.isdisjoint(words):
            return label
    return ""


def _flag(words: list[str], squashed: str) -> HeaderMatch | None:
    joined = " ".join(words)
    negated = (words[:1] == ["no"] and not _NEGATED.isdisjoint(words[1:2])) or any(
        phrase in joined for phrase in ("do not", "ne pas", "opt out", "pas de"))
    opt_out = negated or not _OPT_OUT.isdisjoint(words) or any(w in squashed for w in _OPT_OUT if len(w) > 5)
    consent = not opt_out and (not _CONSENT.isdisjoint(words) or "opt in" in joined or squashed.startswith("okto"))
    if not (opt_out or consent):
        return None
    # "Mail" alone is the postman's (Reynolds' `Block Mail`): such a flag is tied to no phone or email.
    if "email" in squashed or "courriel" in squashed:
        contact = "email"
    elif not _PHONE_WORDS.isdisjoint(words) or any(w in squashed for w in ("phone", "call", "text")):
        contact = "phone"
    elif any(w in squashed for w in ("contact", "solicit", "marketing")):
        contact = "all"
    else:
        contact = ""
    label = _label(words) if contact == "phone" else ""
    if contact == "phone" and not label and ("text" in words or "sms" in words or "texto" in words):
        label = "cell"
    return HeaderMatch(None, flag="block" if opt_out else "consent", contact=contact, label=label)


def _lookup(squashed: str) -> str | None:
    for target, names in SYNONYMS.items():
        if squashed in names:
            return target
    return None


def match_header(header: str) -> HeaderMatch | None:
    """What `header` says; None when it says nothing known (`F07`, `Field 3`, `Column12`)."""
    words = tokens(header)
    if not words:
        return None
    if "co buyer" in " ".join(words) or "cobuyer" in words:  # a co-buyer's name or phone is not the customer's
        return HeaderMatch(None)
    squashed = "".join(words)
    french = bool(_ACCENTED.search(header)) or squashed in _FRENCH or bool(set(words) & _FRENCH - {"province"})
    flag = _flag(words, squashed)
    if flag is not None:
        return flag
    if squashed in _NOT_A_FIELD:  # `Zip4` is the ZIP+4 extension, not a ZIP
        return HeaderMatch(None, french=french)
    letters = "".join(w for w in words if not w.isdigit())
    digits = [int(w) for w in words if w.isdigit()]
    for label, names in PHONE_LABELS.items():
        if squashed in names or letters in names:
            return HeaderMatch("phone", label=label, french=french)
    target = _lookup(squashed)
    group = 1
    if target is None:
        target = _lookup(letters)
        group = digits[0] if digits and target in SYNONYMS_VEHICLE else 1
    if target is None:
        target = _last_words(words)
        group = digits[0] if digits and target in SYNONYMS_VEHICLE else 1
    if target is None:
        target, group = _contained(words, letters, digits)
    if target is None:
        if not _NOT_A_FIELD.isdisjoint(words):
            return HeaderMatch(None, french=french)
        return None
    label = _label(words) if target in ("phone", "email") else ""
    return HeaderMatch(target, group=max(group, 1), label=label, french=french)


SYNONYMS_VEHICLE = frozenset({"vin", "vehicleYear", "vehicleMake", "vehicleModel", "estimatedMileage",
                              "vehicleTrim", "licensePlate", "color", "description"})
#: Synonyms long and specific enough to be found inside a longer header (`BuyerFirstName`, `Veh VIN`);
#: words that only say whose column it is (`Customer Type`, `Account Status`) are not among them.
_WHOSE = frozenset({"customer", "account", "client", "owner", "buyer", "business", "company", "telephone",
                    "vehicle", "vehicule"})
_INSIDE = sorted(((name, target) for target, names in SYNONYMS.items() for name in names if name not in _WHOSE
                  and (len(name) >= 5 or name in ("vin", "niv", "zip", "make", "model", "city", "year", "email"))),
                 key=lambda item: -len(item[0]))


def _last_words(words: list[str]) -> str | None:
    """The target the last one or two words name: the specific part of `Cust.Address.City`, `Veh.VIN`."""
    letters = [w for w in words if not w.isdigit()]
    for count in (2, 1):
        if len(letters) > count:
            target = _lookup("".join(letters[-count:]))
            if target is not None:
                return target
    return None


def _contained(words: list[str], letters: str, digits: list[int]) -> tuple[str | None, int]:
    if not _NOT_A_FIELD.isdisjoint(words):
        return None, 1
    for name, target in _INSIDE:
        if name in words or (len(name) >= 5 and name in letters):
            group = digits[0] if digits and target in SYNONYMS_VEHICLE else 1
            return target, group
    if not _PHONE_WORDS.isdisjoint(words):
        return "phone", 1
    return None, 1


#: Makes and their abbreviations live with the vehicle descriptions that prepare reads with them.
MAKES = composites.MAKES
MAKE_ABBREVIATIONS = composites.MAKE_ABBREVIATIONS
PROVINCE_NAMES = frozenset({"alberta", "british columbia", "manitoba", "new brunswick", "newfoundland and labrador",
                            "nova scotia", "northwest territories", "nunavut", "ontario", "prince edward island",
                            "quebec", "québec", "saskatchewan", "yukon"})
#: Common first names (US census and Quebec registry favourites), upper case: they tell a first-name
#: column from a last-name column when the header says nothing.
FIRST_NAMES = _words(
    "JAMES MARY JOHN PATRICIA ROBERT JENNIFER MICHAEL LINDA WILLIAM ELIZABETH DAVID BARBARA RICHARD SUSAN JOSEPH",
    "JESSICA THOMAS SARAH CHARLES KAREN CHRISTOPHER LISA DANIEL NANCY MATTHEW BETTY ANTHONY MARGARET MARK SANDRA",
    "DONALD ASHLEY STEVEN KIMBERLY PAUL EMILY ANDREW DONNA JOSHUA MICHELLE KENNETH CAROL KEVIN AMANDA BRIAN",
    "DOROTHY GEORGE MELISSA TIMOTHY DEBORAH RONALD STEPHANIE EDWARD REBECCA JASON SHARON JEFFREY LAURA RYAN",
    "CYNTHIA JACOB KATHLEEN GARY AMY NICHOLAS ANGELA ERIC SHIRLEY JONATHAN ANNA STEPHEN BRENDA LARRY PAMELA",
    "JUSTIN EMMA SCOTT NICOLE BRANDON HELEN BENJAMIN SAMANTHA SAMUEL KATHERINE GREGORY CHRISTINE ALEXANDER",
    "DEBRA FRANK RACHEL PATRICK CAROLYN RAYMOND JANET JACK CATHERINE DENNIS MARIA JERRY HEATHER TYLER DIANE",
    "AARON RUTH JOSE JULIE ADAM OLIVIA NATHAN JOYCE HENRY VIRGINIA DOUGLAS VICTORIA ZACHARY KELLY PETER LAUREN",
    "KYLE CHRISTINA ETHAN JOAN WALTER EVELYN NOAH JUDITH JEREMY MEGAN CHRISTIAN ANDREA KEITH CHERYL ROGER HANNAH",
    "TERRY JACQUELINE GERALD MARTHA HAROLD GLORIA SEAN TERESA AUSTIN ANN CARL SARA ARTHUR MADISON LAWRENCE",
    "FRANCES DYLAN KATHRYN JESSE JANICE JORDAN JEAN BRYAN ABIGAIL BILLY ALICE JOE JUDY BRUCE SOPHIA GABRIEL",
    "GRACE LOGAN DENISE ALBERT AMBER WILLIE DORIS ALAN MARILYN JUAN DANIELLE WAYNE BEVERLY ELIJAH ISABELLA",
    "RANDY THERESA ROY DIANA VINCENT NATALIE RALPH BRITTANY EUGENE CHARLOTTE RUSSELL MARIE BOBBY KAYLA MASON",
    "ALEXIS PHILIP LORI LOUIS CARLOS MARÍA JOSÉ LUIS JORGE MIGUEL ANA ROSA CARMEN LIAM LUCAS WEI AISHA",
    "FATIMA DMITRI ZOË ZOE PIERRE JACQUES FRANÇOIS FRANCOIS MARC LUC ANDRÉ ANDRE MICHEL SYLVIE NATHALIE ISABELLE",
    "CHANTAL LOUISE GENEVIÈVE GENEVIEVE JULIE CATHERINE MARTIN SIMON ÉRIC MATHIEU GUILLAUME ALEXANDRE ÉMILIE",
    "EMILIE CAMILLE LÉA LEA CHLOÉ CHLOE GABRIELLE MAXIME FÉLIX FELIX OLIVIER SAMUEL NICOLAS PHILIPPE YVES DENIS",
    "JEAN-FRANÇOIS JEAN-FRANCOIS JEAN-PIERRE MARIE-ÈVE MARIE-EVE MARIE-CLAUDE ANNE-MARIE RÉJEAN GAÉTAN LUCIE",
    "MANON JOSÉE JOSEE HÉLÈNE HELENE SOPHIE VALÉRIE VALERIE STÉPHANE STEPHANE BENOÎT BENOIT FRANCE GINETTE",
)
