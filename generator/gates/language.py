"""Offline language identification: writing system first, then stopword profiles for Latin text.

No model and no download: the documents are long (hundreds of words), and for text of that
size the share of each language's most frequent function words separates the supported
languages cleanly. Words shared by several languages ("de", "a", "in") are split between them,
so only the words that tell languages apart decide. Scripts other than Latin are identified by
their Unicode blocks, with a few letters to split languages that share a script.
"""

from __future__ import annotations

import re
from collections import Counter

UNKNOWN = "unknown"

# ISO 639-1 codes of the languages told apart by stopwords (Latin script).
_STOPWORDS: dict[str, str] = {
    "en": """
        the and to of a in that is it was i he she you for on with as his her they be at by
        this had not are but from or have an we which one my me so if what all there would
        their will when who him been has more were no out do up about your can said them just
        into could like than then did its our some only also how any these very don t s didn
        ll ve re m doesn isn wasn couldn wouldn hadn haven won us over because after before
        though through again where why here those such own same too until while off should
        might must shall whether each few most other both being having does doing
    """,
    "de": """
        der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch
        es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über
        einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei ich du
        wir ihr mich mir dich dir uns euch mein meine meinen meiner kein keine keinen nichts
        was wenn weil schon doch immer ganz sehr hier dort heute jetzt dann also ja nein denn
        gibt habe hatte hätte würde könnte kann muss soll will wieder etwas diese dieser
        dieses diesen ihm ihn ihnen seine seinen seiner unser unsere gegen ohne zwischen
        unter sondern damit nachdem obwohl wäre waren bin bist seid
    """,
    "fr": """
        de la le et les des en un une du que est pour qui dans pas sur au ne se ce il elle je
        nous vous ils elles avec sont mais ou plus par son sa ses leur leurs aux cette été
        être avoir était fait comme on tout très aussi bien sans peut même où y lui moi toi ça
        c qu j l d n s m t ai as avait avons avez ont suis es sommes êtes étais était
        étaient cela ceci ces cet celle celui ceux dont donc quand alors encore jamais
        toujours rien quelque chose déjà après avant chez entre vers mon ma mes ton ta tes
        notre nos votre vos peu trop beaucoup
    """,
    "es": """
        de la que el en y a los se del las un por con no una su para es al lo como más pero
        sus le ya o fue este ha sí porque esta son entre cuando muy sin sobre también me
        hasta hay donde quien desde todo nos durante todos uno les ni contra otros ese eso
        ante ellos e esto mí antes algunos qué unos yo otro otras otra él tanto esa estos
        mucho quienes nada muchos cual poco ella estar estas algunas algo nosotros mi mis tú
        te ti tu tus ellas vosotros os está estaba estoy están era eran había hace hacer
        puede pueda dijo aunque entonces siempre después cómo dónde cuándo ahora aquí así
        bien
    """,
    "pt": """
        de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi
        ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela
        até isso ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você
        tinha foram essa num nem suas meu às minha têm numa pelos elas havia seja qual será
        nós tenho lhe deles essas esses pelas este fosse dele tu te vocês vos lhes meus
        minhas teu tua teus tuas nosso nossa nossos nossas dela delas esta estes estas aquele
        aquela aqueles aquelas isto aquilo estou estava estavam então agora ainda aqui
        assim onde porque sempre também bem fazer faz disse
    """,
    "it": """
        di a da in con su per tra fra il lo la i gli le un uno una e è che non si ma come
        anche del della dei delle degli dello al alla ai alle allo agli nel nella nei nelle
        sono ho ha hanno era erano questo questa questi queste quello quella quelli mi ti ci
        vi lui lei noi voi loro mio mia miei mie suo sua suoi sue più molto già perché quando
        dove chi cosa sempre ancora poi così solo tutto tutti tutte essere stato stata fatto
        abbiamo avete aveva avevo sei siamo siete sia fosse ero anch dell all nell sull
        qualcosa niente nulla allora adesso ora qui proprio
    """,
    "nl": """
        de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er
        maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit
        der daar haar naar heb hoe heeft hebben deze u want nog zal me zij nu geen omdat iets
        worden toch al waren veel meer doen toen moet ben zonder kan hun dus alles onder ja
        eens hier wie werd altijd wordt kunnen ons zelf tegen na reeds wil kon niets uw
        iemand geweest andere jij jou jullie wij we onze ons mijn waar waarom wanneer
        misschien eigenlijk gewoon heel echt even
    """,
    "sv": """
        och i att det som en på är av för med till den har de inte om ett men var jag sig
        från vi så kan man när år hon under också efter eller nu sin där vid mot ska skulle
        kommer ut får finns vara hade alla andra mycket än här då sedan över bara in blir
        upp även vad få två vill ha många hur mer går detta hans utan sina något allt
        första fick måste mellan blev bli någon några sitt varit dem bland genom annat fram
        gör ingen göra redan inom kom du helt ju samma kanske själv oss mig dig honom henne
        deras vår våra min mitt mina din ditt dina inget aldrig alltid varför
    """,
    "pl": """
        i w na z że się nie do to jest jak a o co po ale od za tak jej jego ich już tylko dla
        przez czy gdy ten ta te tym tego tej jako może być był była było były są mnie mi mu
        nam wam ją go je które który która bardzo jeszcze też więc gdzie kiedy tu tam nic
        coś ktoś wszystko każdy ze przy pod nad przed między bez dlaczego bo ponieważ sobie
        siebie mój moja moje twój twoja jestem jesteś jesteśmy mam ma mamy można trzeba
        tylko teraz potem zawsze nigdy naprawdę chyba bardzo powiedział powiedziała
    """,
    "tr": """
        ve bir bu da de için ile ne çok daha gibi ama olarak kadar sonra her en o ben sen biz
        siz onlar mı mi mu mü değil var yok diye ki şey ya veya hem şu çünkü nasıl neden
        zaman ise olan oldu olduğu bana beni sana seni onu ona bunu şimdi artık hiç bile
        sadece yine hep göre ancak benim senin onun bizim sizin onların bunun şunu şöyle
        böyle öyle çünkü eğer belki hemen kendi kendine bütün tüm hiçbir birlikte değildi
        olur olsun oldum olduğunu dedi
    """,
    "id": """
        yang dan di ini itu dengan untuk tidak dari dalam akan pada juga saya ke karena
        tersebut bisa ada mereka lebih kami kita sudah atau telah adalah seperti oleh jika
        saat hanya bahwa dia ia apa kalau belum masih harus sangat bagi namun maka aku kamu
        anda tapi tetapi sebagai setelah semua banyak lagi pun sini sana sedang mau bukan
        begitu ketika lalu tak ya sendiri apakah para antara nya kepada hari sekarang
        mungkin sambil agar supaya tentang hingga sampai
    """,
}

# Letters that occur in one supported Latin-script language only: a small extra vote each.
_EXCLUSIVE_LETTERS: dict[str, str] = {
    "ñ": "es",
    "ã": "pt",
    "õ": "pt",
    "ß": "de",
    "å": "sv",
    "ł": "pl",
    "ą": "pl",
    "ę": "pl",
    "ś": "pl",
    "ź": "pl",
    "ż": "pl",
    "ć": "pl",
    "ı": "tr",
    "ş": "tr",
    "ğ": "tr",
}
_LETTER_VOTE = 0.5

LATIN_LANGUAGES: tuple[str, ...] = tuple(_STOPWORDS)
SCRIPT_LANGUAGES: tuple[str, ...] = ("ja", "zh", "ko", "ru", "uk", "ar", "hi", "el")
SUPPORTED: frozenset[str] = frozenset(LATIN_LANGUAGES + SCRIPT_LANGUAGES)

MIN_WORDS = 5  # fewer Latin words than this: too short to say
MIN_SCRIPT_CHARS = 10  # fewer letters of a non-Latin script than this: too short to say
_MIN_COVERAGE = 0.04  # below this stopword share the text is in none of the profiles
_FULL_COVERAGE = 0.15  # a stopword share at which coverage no longer limits confidence
_MIN_MARGIN = 0.1  # best and runner-up closer than this: ambiguous
_MAX_CHARS = 20_000  # documents are at most a few thousand words; bound the cost anyway


def _build_table() -> dict[str, tuple[tuple[int, float], ...]]:
    owners: dict[str, list[int]] = {}
    for index, words in enumerate(_STOPWORDS.values()):
        for word in dict.fromkeys(words.split()):
            owners.setdefault(word, []).append(index)
    return {
        word: tuple((index, 1.0 / len(langs)) for index in langs) for word, langs in owners.items()
    }


_TABLE = _build_table()
_LATIN_WORD = re.compile(r"[^\W\d_]+")
# Letters of the scripts identified by their Unicode blocks.
_SCRIPT_BLOCKS = {
    "cyrillic": "\u0400-\u04ff",
    "greek": "\u0370-\u03ff\u1f00-\u1fff",
    "arabic": "\u0600-\u06ff\u0750-\u077f",
    "devanagari": "\u0900-\u097f",
    "hangul": "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f",
    "kana": "\u3040-\u30ff\u31f0-\u31ff",
    "han": "\u4e00-\u9fff\u3400-\u4dbf",
}
_SCRIPTS = {name: re.compile(f"[{block}]") for name, block in _SCRIPT_BLOCKS.items()}
_ANY_SCRIPT = re.compile(f"[{''.join(_SCRIPT_BLOCKS.values())}]")
_UK_LETTERS = re.compile(r"[іїєґІЇЄҐ]")
_RU_LETTERS = re.compile(r"[ыэъёЫЭЪЁ]")


def detect(text: str, *, words: list[str] | None = None) -> tuple[str, float]:
    """The language of `text` as an ISO 639-1 code and a confidence in [0, 1].

    Returns ("unknown", 0.0) when the text is too short, in none of the supported languages,
    or too evenly split between two of them to say. A caller that has already split the
    lowercased text into word tokens may pass them as `words` to save a pass.
    """
    text = text[:_MAX_CHARS]
    lowered = text.lower()
    if words is None:
        words = _LATIN_WORD.findall(lowered)
    if not text.isascii():
        script = _detect_script(text, words)
        if script is not None:
            return script
    return _detect_latin(lowered, words)


def _detect_script(text: str, words: list[str]) -> tuple[str, float] | None:
    """A non-Latin verdict when such letters dominate the text, else None (go on to Latin)."""
    # One scan for any such letter; most documents have none and stop here.
    if _ANY_SCRIPT.search(text) is None:
        return None
    total = len(_ANY_SCRIPT.findall(text))
    # `words` matched every letter, non-Latin ones included; keep the Latin share apart.
    latin = max(sum(map(len, words)) - total, 0)
    if total < latin:
        return None
    if total < MIN_SCRIPT_CHARS:
        return UNKNOWN, 0.0
    share = total / (total + latin)
    by_script = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS.items()}
    cjk = by_script["kana"] + by_script["han"]
    best = max(by_script, key=lambda name: by_script[name])
    if best in ("kana", "han") and cjk >= by_script[best]:
        best_count = cjk
        # Japanese mixes kanji with a large share of kana; Chinese has none.
        language = "ja" if by_script["kana"] >= 0.05 * cjk else "zh"
    else:
        best_count = by_script[best]
        language = {
            "cyrillic": "ru",
            "greek": "el",
            "arabic": "ar",
            "devanagari": "hi",
            "hangul": "ko",
        }[best]
    confidence = share * best_count / total
    if language == "ru":
        uk = len(_UK_LETTERS.findall(text))
        ru = len(_RU_LETTERS.findall(text))
        if uk > ru:
            language = "uk"
        # Neither marker letter is rare in a long text; without either, say less.
        if uk + ru == 0:
            confidence *= 0.6
        else:
            confidence *= abs(uk - ru) / (uk + ru)
    return language, round(min(confidence, 1.0), 3)


def _detect_latin(lowered: str, words: list[str]) -> tuple[str, float]:
    if len(words) < MIN_WORDS:
        return UNKNOWN, 0.0
    scores = [0.0] * len(LATIN_LANGUAGES)
    for word, count in Counter(filter(_TABLE.__contains__, words)).items():
        for index, weight in _TABLE[word]:
            scores[index] += weight * count
    if not lowered.isascii():
        for letter, language in _EXCLUSIVE_LETTERS.items():
            found = lowered.count(letter)
            if found:
                scores[LATIN_LANGUAGES.index(language)] += _LETTER_VOTE * found
    ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
    best, second = scores[ranked[0]], scores[ranked[1]]
    coverage = best / len(words)
    if coverage < _MIN_COVERAGE:
        return UNKNOWN, 0.0
    margin = (best - second) / best
    if margin < _MIN_MARGIN:
        return UNKNOWN, 0.0
    confidence = margin * min(1.0, coverage / _FULL_COVERAGE)
    return LATIN_LANGUAGES[ranked[0]], round(confidence, 3)


# Typographic punctuation common in prose: replacing it first leaves most documents pure
# ASCII, for which str.translate has a fast path several times quicker than `re.findall`.
_TYPOGRAPHIC = ("’", "‘", "“", "”", "—", "–", "…", "«", "»", "•", "·")
_WORD_TABLE = str.maketrans(
    dict.fromkeys((c for c in map(chr, range(128)) if not (c.isalnum() or c == "_")), " ")
)
_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """The word tokens of `text`, exactly `re.findall(r"\\w+", text)`, faster for ASCII prose."""
    plain = text
    for mark in _TYPOGRAPHIC:
        if mark in plain:
            plain = plain.replace(mark, " ")
    if plain.isascii():
        return plain.translate(_WORD_TABLE).split()
    return _WORD.findall(text)


def primary_subtag(code: str) -> str:
    """The primary language subtag: en-GB -> en, pt_BR -> pt."""
    return re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
