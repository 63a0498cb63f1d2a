"""Small synthetic stand-ins for the shared data, built in the tests so a user's clone runs them without ../shared.

- `write_alpaca(dir, n)`: a parallel Alpaca in the shared files' layouts: `alpaca_en_zh.jsonl` (one row per item,
  `en_instruction`/`en_input`/`en_output` and `zh_*` columns, no ids: the row index is the id) and `vi.jsonl`
  (prompt/response, no ids, a few items lost, as the Vietnamese GPT-4 copy, so the aligner is exercised).
- `write_translation(dir, n)`: FLORES-like line-aligned sentences: `flores_zho2eng.jsonl` / `flores_vie2eng.jsonl`
  (`context` = source, `answer` = English, the same English in both) and Tatoeba-like text files
  `pair.eng` / `pair.vie`, plus `other.zho` with a different line count (not line-aligned).

Texts are real sentences in each language (language ID must recognise them), combined per item with a
distinct number, so every item differs and numbers survive translation (the aligner's strongest signal).
Deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

# (English, Chinese, Vietnamese)
TOPICS = [
    ("healthy eating", "健康饮食", "ăn uống lành mạnh"), ("regular exercise", "定期锻炼", "tập thể dục đều đặn"),
    ("good sleep", "良好的睡眠", "giấc ngủ ngon"), ("saving money", "省钱", "tiết kiệm tiền"),
    ("learning a language", "学习一门语言", "học một ngôn ngữ"), ("reading books", "读书", "đọc sách"),
    ("growing vegetables", "种植蔬菜", "trồng rau"), ("public transport", "公共交通", "giao thông công cộng"),
    ("clean water", "清洁的水", "nước sạch"), ("solar energy", "太阳能", "năng lượng mặt trời"),
    ("team work", "团队合作", "làm việc nhóm"), ("time management", "时间管理", "quản lý thời gian"),
]
INSTRUCTIONS = [
    ("Give three tips about {t}.", "给出关于{t}的三个建议。", "Hãy đưa ra ba lời khuyên về {t}."),
    ("Explain why {t} matters.", "解释为什么{t}很重要。", "Hãy giải thích tại sao {t} lại quan trọng."),
    ("Write a short paragraph about {t}.", "写一段关于{t}的短文。", "Hãy viết một đoạn văn ngắn về {t}."),
    ("Describe the benefits of {t} for a family.", "描述{t}对一个家庭的好处。",
     "Hãy mô tả những lợi ích của {t} đối với một gia đình."),
]
INPUTS = [
    ("", "", ""),
    ("The plan has {n} steps.", "这个计划有{n}个步骤。", "Kế hoạch này có {n} bước."),
]
OUTPUTS = [
    ("Start with small changes every day, because {t} becomes easier with practice.",
     "每天从小的改变开始，因为{t}会随着练习变得更容易。",
     "Hãy bắt đầu với những thay đổi nhỏ mỗi ngày, vì {t} sẽ dễ dàng hơn khi luyện tập."),
    ("Many people say that {t} improves their health and makes them happier.",
     "很多人说{t}改善了他们的健康，让他们更快乐。",
     "Nhiều người nói rằng {t} cải thiện sức khỏe và giúp họ hạnh phúc hơn."),
    ("A study of {n} families found clear results after one year.",
     "一项针对{n}个家庭的研究在一年后发现了明显的结果。",
     "Một nghiên cứu trên {n} gia đình đã cho thấy kết quả rõ ràng sau một năm."),
    ("You should talk with your friends and make a simple plan together.",
     "你应该和朋友们谈谈，一起制定一个简单的计划。",
     "Bạn nên nói chuyện với bạn bè và cùng nhau lập một kế hoạch đơn giản."),
]
SENTENCES = [
    ("The weather in the north will be cold this week, with {n} millimetres of rain.",
     "本周北方天气寒冷，降雨量将达到{n}毫米。",
     "Thời tiết ở miền bắc tuần này sẽ lạnh, với lượng mưa {n} milimét."),
    ("The city opened a new library with {n} books for children.",
     "这座城市开设了一家新图书馆，为孩子们提供{n}本书。",
     "Thành phố đã mở một thư viện mới với {n} cuốn sách cho trẻ em."),
    ("Scientists discovered {n} new species of insects in the forest.",
     "科学家在森林里发现了{n}种新的昆虫。",
     "Các nhà khoa học đã phát hiện {n} loài côn trùng mới trong khu rừng."),
    ("The train from the capital arrives at {n} minutes past nine.",
     "从首都出发的火车在九点{n}分到达。",
     "Chuyến tàu từ thủ đô đến lúc chín giờ {n} phút."),
]
LOST_VI = (7, 19)  # items the Vietnamese copy lacks (the real one lost ~910 of 52,002)


def alpaca_items(n: int) -> list[dict[str, tuple[str, str, str]]]:
    """n parallel items: {"en": (instruction, input, output), "zh": ..., "vi": ...}."""
    items = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        instr = INSTRUCTIONS[(i // len(TOPICS)) % len(INSTRUCTIONS)]
        inp = INPUTS[i % 3 == 1]
        outs = [OUTPUTS[i % len(OUTPUTS)], OUTPUTS[(i + 2) % len(OUTPUTS)]]
        num = str(11 + 7 * i)
        item = {}
        for k, lang in enumerate(("en", "zh", "vi")):
            fill = dict(t=topic[k], n=num)
            sep = "" if lang == "zh" else " "
            item[lang] = (instr[k].format(**fill), inp[k].format(**fill),
                          sep.join(o[k].format(**fill) for o in outs) + f"{sep}({num})")
        items.append(item)
    return items


def write_alpaca(out: Path, n: int = 120) -> dict[str, Path]:
    """`{"alpaca": en/zh parallel file, "vi": the Vietnamese copy}` as JSON Lines."""
    out.mkdir(parents=True, exist_ok=True)
    items = alpaca_items(n)
    with open(out / "alpaca_en_zh.jsonl", "w", encoding="utf-8") as f:
        for it in items:
            row = {f"{lang}_{key}": value for lang in ("en", "zh")
                   for key, value in zip(("instruction", "input", "output"), it[lang])}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(out / "vi.jsonl", "w", encoding="utf-8") as f:
        for i, it in enumerate(items):
            if i in LOST_VI:
                continue
            instr, inp, output = it["vi"]
            prompt = f"{instr}\n\n{inp}" if inp else instr
            f.write(json.dumps({"prompt": prompt, "response": output}, ensure_ascii=False) + "\n")
    return {"alpaca": out / "alpaca_en_zh.jsonl", "vi": out / "vi.jsonl"}


def write_translation(out: Path, n: int = 60) -> dict[str, Path]:
    """FLORES-like JSONL per direction, Tatoeba-like text pair, and a misaligned side."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        s = SENTENCES[i % len(SENTENCES)]
        rows.append(tuple(x.format(n=3 + 5 * i) for x in s))
    paths = {}
    for name, k in (("zh", 1), ("vi", 2)):
        p = paths[f"flores_{name}"] = out / f"flores_{name}2eng.jsonl"
        p.write_text("".join(json.dumps({"context": r[k], "answer": r[0]}, ensure_ascii=False) + "\n" for r in rows),
                     encoding="utf-8")
    paths["pair_en"] = out / "pair.eng"
    paths["pair_en"].write_text("".join(r[0] + "\n" for r in rows), encoding="utf-8")
    paths["pair_vi"] = out / "pair.vie"
    paths["pair_vi"].write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    paths["other_zh"] = out / "other.zho"
    paths["other_zh"].write_text("".join(r[1] + "\n" for r in rows[: n // 2]), encoding="utf-8")
    return paths
