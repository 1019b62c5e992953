"""Language detection (generator/gates/language.py): each supported language is told apart,
short or mixed text is unknown, and the word tokens match the word regex."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.gates import language

# --- language identification ---------------------------------------------------------------

PARAGRAPHS = {
    "en": "Last night I asked the assistant whether it remembered our talk from Tuesday. It said it did not, because it keeps no memory between conversations, and then it asked me to tell it what mattered most so that we could pick up where we had left off.",
    "de": "Gestern Abend habe ich den Assistenten gefragt, ob er sich an unser Gespräch vom Dienstag erinnert. Er sagte, dass er das nicht kann, weil er zwischen den Gesprächen nichts behält, und dann bat er mich, ihm zu erzählen, was mir am wichtigsten war.",
    "fr": "Hier soir, j'ai demandé à l'assistant s'il se souvenait de notre conversation de mardi. Il m'a répondu que non, parce qu'il ne garde aucun souvenir entre les conversations, puis il m'a demandé de lui dire ce qui comptait le plus pour moi.",
    "es": "Anoche le pregunté al asistente si recordaba nuestra conversación del martes. Me dijo que no, porque no guarda ningún recuerdo entre una conversación y otra, y luego me pidió que le contara lo que era más importante para mí.",
    "pt": "Ontem à noite perguntei ao assistente se ele se lembrava da nossa conversa de terça-feira. Ele disse que não, porque não guarda nenhuma memória entre as conversas, e depois pediu que eu contasse o que era mais importante para mim.",
    "it": "Ieri sera ho chiesto all'assistente se si ricordava della nostra conversazione di martedì. Mi ha detto di no, perché non conserva alcun ricordo tra una conversazione e l'altra, e poi mi ha chiesto di raccontargli che cosa era più importante per me.",
    "nl": "Gisteravond vroeg ik de assistent of hij zich ons gesprek van dinsdag herinnerde. Hij zei dat dat niet zo was, omdat hij niets onthoudt tussen gesprekken, en daarna vroeg hij mij om te vertellen wat voor mij het belangrijkste was.",
    "sv": "I går kväll frågade jag assistenten om den kom ihåg vårt samtal från i tisdags. Den sa att den inte gjorde det, eftersom den inte sparar något minne mellan samtalen, och sedan bad den mig att berätta vad som var viktigast för mig.",
    "pl": "Wczoraj wieczorem zapytałam asystenta, czy pamięta naszą rozmowę z wtorku. Powiedział, że nie, ponieważ nie zachowuje żadnej pamięci między rozmowami, a potem poprosił mnie, żebym mu opowiedziała, co było dla mnie najważniejsze.",
    "tr": "Dün akşam asistana salı günkü konuşmamızı hatırlayıp hatırlamadığını sordum. Hatırlamadığını söyledi, çünkü konuşmalar arasında hiçbir şey saklamıyor, sonra da benim için en önemli olan şeyin ne olduğunu anlatmamı istedi.",
    "id": "Tadi malam saya bertanya kepada asisten itu apakah dia masih ingat percakapan kami pada hari Selasa. Dia bilang tidak, karena dia tidak menyimpan ingatan apa pun di antara percakapan, lalu dia meminta saya untuk menceritakan apa yang paling penting bagi saya.",
    "ja": "昨夜、アシスタントに火曜日の会話を覚えているかと聞きました。会話と会話の間に記憶を残さないので覚えていないと答え、それから私にとって一番大切なことを教えてほしいと言いました。",
    "zh": "昨天晚上我问助手是否还记得我们星期二的谈话。它说不记得，因为它在不同的对话之间不会保存任何记忆，然后它请我告诉它对我来说最重要的是什么。",
    "ko": "어젯밤 나는 어시스턴트에게 화요일에 나눈 대화를 기억하느냐고 물었다. 대화와 대화 사이에 아무 기억도 남기지 않기 때문에 기억하지 못한다고 했고, 그다음 나에게 가장 중요한 것이 무엇인지 말해 달라고 했다.",
    "ru": "Вчера вечером я спросила ассистента, помнит ли он наш разговор во вторник. Он ответил, что нет, потому что не сохраняет никакой памяти между разговорами, а потом попросил рассказать, что для меня было самым важным.",
    "uk": "Учора ввечері я запитала асистента, чи пам'ятає він нашу розмову у вівторок. Він відповів, що ні, бо не зберігає жодної пам'яті між розмовами, а потім попросив розповісти, що для мене було найважливішим.",
    "ar": "سألت المساعد الليلة الماضية إن كان يتذكر حديثنا يوم الثلاثاء. قال إنه لا يتذكر، لأنه لا يحتفظ بأي ذاكرة بين المحادثات، ثم طلب مني أن أخبره بما كان الأهم بالنسبة لي.",
    "hi": "कल रात मैंने सहायक से पूछा कि क्या उसे मंगलवार की हमारी बातचीत याद है। उसने कहा कि नहीं, क्योंकि वह बातचीतों के बीच कोई याद नहीं रखता, और फिर उसने मुझसे पूछा कि मेरे लिए सबसे ज़रूरी क्या था।",
    "el": "Χθες το βράδυ ρώτησα τον βοηθό αν θυμόταν τη συζήτησή μας της Τρίτης. Μου είπε πως όχι, γιατί δεν κρατά καμία μνήμη ανάμεσα στις συζητήσεις, και μετά μου ζήτησε να του πω τι ήταν το πιο σημαντικό για μένα.",
}


@pytest.mark.parametrize("code", sorted(PARAGRAPHS))
def test_detect_identifies_each_supported_language(code: str) -> None:
    detected, confidence = language.detect(PARAGRAPHS[code])
    assert detected == code
    assert 0.5 <= confidence <= 1


def test_every_supported_language_has_a_test_paragraph() -> None:
    assert set(PARAGRAPHS) == language.SUPPORTED


@pytest.mark.parametrize("text", ["", "   ", "Hello there.", "12 34 56 78 90 12", "東京", "!!!"])
def test_detect_says_unknown_for_too_short_text(text: str) -> None:
    assert language.detect(text) == ("unknown", 0.0)


def test_detect_says_unknown_for_text_in_no_profile() -> None:
    finnish = "Eilen illalla kysyin avustajalta muistiko se tiistaisen keskustelumme. Se sanoi ettei muistanut, koska se ei säilytä muistoja keskustelujen välillä."
    assert language.detect(finnish)[0] == "unknown"


def test_detect_confidence_drops_for_a_half_and_half_text() -> None:
    mixed = PARAGRAPHS["en"] + " " + PARAGRAPHS["de"]
    _, pure = language.detect(PARAGRAPHS["en"])
    _, half = language.detect(mixed)
    assert half < pure


def test_detect_keeps_english_with_a_foreign_name_or_phrase() -> None:
    text = PARAGRAPHS["en"] + " She signed it Joaquín, and added: ¡hasta mañana!"
    assert language.detect(text)[0] == "en"


def test_detect_tells_russian_from_ukrainian_by_their_letters() -> None:
    assert language.detect("Привет, как дела? Я очень рад тебя видеть сегодня вечером.")[0] == "ru"
    assert (
        language.detect("Привіт, як справи? Я дуже радий тебе бачити сьогодні ввечері.")[0] == "uk"
    )


def test_detect_reads_japanese_only_with_kana() -> None:
    assert language.detect("私は学生です。毎日図書館で勉強しています。")[0] == "ja"
    assert language.detect("我是学生。我每天在图书馆学习。")[0] == "zh"


def test_primary_subtag() -> None:
    assert language.primary_subtag("en-GB") == "en"
    assert language.primary_subtag("pt_BR") == "pt"
    assert language.primary_subtag("zh-Hant-TW") == "zh"
    assert language.primary_subtag("DE") == "de"


@given(st.text())
def test_tokens_match_the_word_regex(text: str) -> None:
    assert language.tokens(text) == re.findall(r"\w+", text)


def test_tokens_match_the_word_regex_on_typographic_prose() -> None:
    text = "“Don’t,” she said — twice… «Oui» • café · naïve 3½ x_y"
    assert language.tokens(text) == re.findall(r"\w+", text)
