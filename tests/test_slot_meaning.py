"""Slot answers must mean what the slot asks for: a city, a time, a fault (actions/slot_meaning.py).

The word lists below double as the measurement set for false positives/negatives: every list
is checked in full, so a change that lets "周六上午" through as a city fails here."""
from __future__ import annotations

import pytest

from actions.slot_meaning import is_fault_description, parse_city, parse_preferred_time

# The 50 largest cities, each with a district for the "city + district" form.
LARGEST_CITIES = {
    "上海": "浦东新区", "北京": "朝阳区", "深圳": "南山区", "重庆": "渝中区", "广州": "天河区",
    "成都": "武侯区", "天津": "和平区", "武汉": "江汉区", "东莞": "长安镇", "西安": "雁塔区",
    "杭州": "西湖区", "佛山": "南海区", "南京": "鼓楼区", "沈阳": "和平区", "青岛": "市南区",
    "济南": "历下区", "长沙": "岳麓区", "哈尔滨": "南岗区", "郑州": "金水区", "昆明": "五华区",
    "大连": "中山区", "南宁": "青秀区", "石家庄": "长安区", "厦门": "思明区", "太原": "小店区",
    "苏州": "工业园区", "贵阳": "云岩区", "合肥": "蜀山区", "乌鲁木齐": "天山区", "宁波": "鄞州区",
    "无锡": "滨湖区", "福州": "鼓楼区", "长春": "朝阳区", "南昌": "东湖区", "常州": "武进区",
    "兰州": "城关区", "中山": "石岐区", "温州": "鹿城区", "汕头": "金平区", "珠海": "香洲区",
    "南通": "崇川区", "徐州": "鼓楼区", "惠州": "惠城区", "海口": "龙华区", "烟台": "芝罘区",
    "泉州": "丰泽区", "呼和浩特": "新城区", "洛阳": "西工区", "唐山": "路北区", "潍坊": "奎文区",
}


def city_phrasings(city: str, district: str):
    """Five ways callers name a city: bare, official, located, with a particle, with a district."""
    return [city, f"{city}市", f"我在{city}", f"在{city}吧", f"{city}{district}"]


CITY_ANSWERS = [(text, city) for city, district in LARGEST_CITIES.items()
                for text in city_phrasings(city, district)] + [
    ("我人在上海这边", "上海"), ("广东省深圳市", "深圳"), ("江苏苏州", "苏州"), ("广东中山", "中山"),
    ("廣州", "广州"), ("我在臺北", "台北"), ("香港", "香港"), ("澳門", "澳门"), ("高雄", "高雄"),
    ("昆山", "苏州"), ("义乌市", "金华"), ("浦东新区", "上海"), ("延边朝鲜族自治州", "延边"),
    ("大理", "大理"), ("恩施州", "恩施"), ("上海南京路", "上海"), ("  深 圳  ", "深圳"),
]

FAULTS = """
屏幕碎了 开不了机 电池不耐用 进水了 摔了一下屏幕不亮 屏幕裂了 手机黑屏 屏幕花屏了 屏幕上有绿线
屏幕有一条竖线 触摸失灵 触屏没反应 屏幕有坏点 屏幕有亮点 屏幕闪烁闪屏 屏幕发黄 后盖碎了 摄像头玻璃裂了
开不开机 一直重启 无限重启 卡在白苹果 死机了 特别卡 反应很慢 应用闪退 自动关机 电量还有就关机了
充不进电 充电很慢 无线充电不行 充电口接触不良 电池鼓包了 电池健康只有百分之七十 耗电特别快 掉电很快
续航很差 发烫很厉害 玩一会就发热 进水了开不了机 掉进马桶里了 泡水了 淋雨以后不好用了 被咖啡泼了
没有声音 听筒声音很小 扬声器有杂音 打电话对方听不到 麦克风坏了 外放破音 耳机一边没声音 耳机有电流声
降噪不工作了 左耳不响 充电盒充不进电 相机拍照模糊 摄像头对不上焦 拍照有黑点 后置镜头进灰了 闪光灯不亮
面容ID不能用 FaceID无法使用 指纹识别失灵 TouchID坏了 Home键按不下去 电源键失灵 音量键卡住了
静音键坏了 没有信号 信号很差 WiFi连不上 蓝牙连不上 无法激活 ID锁锁住了 网络老断 定位不准
键盘有几个键没反应 触控板失灵 风扇噪音很大 散热不好 屏幕排线坏了 屏幕有划痕 边框变形了 机身弯了
掉漆了 电池漏液 表带扣松动 表冠不灵 心率检测不准 手表屏幕脱胶 电脑开机黑屏 笔记本进水了
MacBook键盘进水 iPhone屏幕碎了 iPad充不进电 手机摔坏了 平板弯了 电脑很卡 耳机丢了一只盒子坏了
右上角有个小黑点 有时候会烫手 听不清对方说话 振动马达不震了 系统升级以后变砖了 显示有问题
不知道什么毛病就是用不了 手机有问题 出故障了 异常发热 屏幕不正常 插耳机没反应 按键松动
""".split()

TIMES = {
    "周六上午": "周六上午", "星期六": "周六", "礼拜六下午": "周六下午", "明天下午三点": "明天下午3点",
    "后天": "后天", "下周二": "下周二", "12月3日": "12月3日", "3号": "3号", "12/3": "12月3日",
    "晚上": "晚上", "下午3点半": "下午3点半", "15:00": "15点", "十点": "10点", "这周末": "本周末",
    "工作日晚上": "工作日晚上", "越快越好": "尽快", "尽快": "尽快", "随时": "尽快", "随时都可以": "尽快",
    "今天": "今天", "今天中午": "今天中午", "明天上午": "明天上午", "明早九点": "明天早上9点",
    "今晚8点": "今天晚上8点", "大后天": "大后天", "星期天": "周日", "礼拜天上午": "周日上午",
    "周日下午两点": "周日下午2点", "这个周六": "本周六", "下个星期一": "下周一", "下下周三上午": "下下周三上午",
    "周末": "周末", "下周末": "下周末", "十二月三号": "12月3日", "3月15日下午": "3月15日下午",
    "5号上午十点": "5号上午10点", "十点半": "10点半", "十点一刻": "10点15分", "下午两点二十": "下午2点20分",
    "14:30": "14点半", "9:15": "9点15分", "早上八点": "早上8点", "傍晚": "傍晚", "中午12点": "中午12点",
    "下午三点到五点": "下午3点到5点", "周六或者周日": "周六或周日", "周六上午吧": "周六上午",
    "我想约周六上午": "周六上午", "那就明天吧": "明天", "明天可以吗": "明天", "星期三下午四点左右": "周三下午4点",
    "礼拜五晚上": "周五晚上", "下周一上午十点": "下周一上午10点", "周１上午": "周一上午", "１５：００": "15点",
    "禮拜六下午": "周六下午", "明天下午": "明天下午", "后天早上": "后天早上", "今天下午就可以": "今天下午",
    "越早越好": "尽快", "马上": "尽快", "最快什么时候": "尽快", "哪天都行": "尽快", "工作日": "工作日",
    "下周一到周三": "下周一到周三", "明天一早": "明天早上", "晚上八点以后": "晚上8点以后", "周三之前": "周三以前",
}

DEVICES = [
    "iPhone", "iphone", "我的iPhone", "iPhone 15", "iPhone 14 Pro Max", "iPhone13mini", "iPhone SE",
    "苹果手机", "手机", "我的手机", "爱疯", "苹果13", "苹果十三", "iPad", "iPad Pro", "iPad Air 第五代",
    "iPad mini", "平板", "我的平板电脑", "MacBook Pro", "MacBook Air", "macbook", "iMac", "Mac",
    "笔记本", "苹果笔记本", "电脑", "苹果电脑", "Apple Watch", "apple watch ultra", "手表", "watch",
    "AirPods", "airpods pro", "耳机", "苹果耳机", "iPhone 12 Pro", "13 Pro Max", "16寸MacBook Pro",
    "Apple Watch Series 9", "iPhone 15 Plus", "就是手机", "一台iPad", "我的苹果手机",
]

OTHER_ANSWERS = """
不知道 不清楚 不确定 嗯 好的 是的 对 没有 谢谢 你好 喂 随便 转人工 人工客服 没问题 算了 等一下 稍等
asdf ？？？ 。。。 … 哈哈 我想问一下 你们几点下班 多少钱 要多久 在哪里修 怎么收费 保修吗 能修吗
可以 就这些 查一下保修 请问 我要投诉 我想修手机 帮我预约维修
""".split() + ["", " ", "!!!", "ok"]

NOT_CITIES = FAULTS + list(TIMES) + DEVICES + OTHER_ANSWERS + """
还没开封 新买的还没开封 三明治 大同小异 长治久安 别夸下海口 阿里巴巴 普洱茶 龙井茶 东方明珠 中山路
南京路那家店 北京时间下午三点 港版iPhone 台湾版的 平安顺利 合作愉快 安宁一点 新星产品 来宾请登记 白银首饰
在家 在公司 我在路上 我在开车 在附近 市中心 郊区 城区 老家 外地 国外 国内 内地 南方 北方
""".split()

NOT_TIMES = [text for text, _ in CITY_ANSWERS] + FAULTS + DEVICES + OTHER_ANSWERS + ["有一点", "每周一次", "一时半会修不好"]
# Fault descriptions that do carry a time ("今天早上突然开不了机") are not in FAULTS on purpose.

NOT_FAULTS = (DEVICES + [text for text, _ in CITY_ANSWERS] + list(TIMES) + OTHER_ANSWERS
              + ["x" * 201, "屏幕碎了" * 60])


def misses(items, wrong):
    return [item for item in items if wrong(item)]


# ------------------------------------------------------------------ the three nonsense answers

def test_time_is_not_a_city():
    assert parse_city("周六上午") is None


def test_device_is_not_a_fault():
    assert not is_fault_description("iPhone")
    assert not is_fault_description("手机")


def test_city_is_not_a_time():
    assert parse_preferred_time("上海") is None


# ------------------------------------------------------------------ city

@pytest.mark.parametrize("text,city", [
    ("我在上海", "上海"), ("上海市", "上海"), ("广州天河区", "广州"), ("在杭州吧", "杭州"), ("深圳", "深圳"),
    ("周六上午", None), ("iPhone", None), ("不知道", None), ("asdf", None), ("", None),
])
def test_parse_city_examples(text, city):
    assert parse_city(text) == city


def test_every_phrasing_of_the_largest_cities_is_found():
    assert misses(CITY_ANSWERS, lambda pair: parse_city(pair[0]) != pair[1]) == []


def test_no_city_in_faults_times_devices_or_words_that_contain_city_names():
    assert misses(NOT_CITIES, parse_city) == []


@pytest.mark.parametrize("text,city", [
    ("我在中山", "中山"), ("中山公园", None),           # a common-word name counts only on its own
    ("开封", "开封"), ("还没开封", None),
    ("海南", None), ("广东", None),                    # a province is not a city
    ("朝阳区", None),                                  # in Beijing and in Changchun: ambiguous
    ("北京朝阳区", "北京"),
    ("吉林长春", "长春"), ("吉林", "吉林"),            # province before the city; the city itself
    ("灯塔", None),                                    # a county-level city that is a common word: left out
    ("北海道", None), ("北海", "北海"),                # Hokkaido is not Beihai
])
def test_ambiguous_names(text, city):
    assert parse_city(text) == city


# ------------------------------------------------------------------ preferred time

def test_every_time_expression_is_normalised():
    assert misses(TIMES.items(), lambda pair: parse_preferred_time(pair[0]) != pair[1]) == []


def test_no_time_in_cities_faults_devices_or_non_answers():
    assert misses(NOT_TIMES, parse_preferred_time) == []


@pytest.mark.parametrize("text", ["早一点", "快一点", "13月5日", "12月40日", "25点", "3点70分"])
def test_impossible_or_idiomatic_times_are_rejected(text):
    assert parse_preferred_time(text) is None


# ------------------------------------------------------------------ fault

@pytest.mark.parametrize("text", ["屏幕碎了", "开不了机", "电池不耐用", "进水了", "摔了一下屏幕不亮"])
def test_fault_examples(text):
    assert is_fault_description(text)


@pytest.mark.parametrize("text", ["iPhone", "我的手机", "MacBook Pro", "上海", "周六上午", "", "，。！", "好" * 201])
def test_not_fault_examples(text):
    assert not is_fault_description(text)


def test_every_fault_description_is_accepted():
    assert misses(FAULTS, lambda text: not is_fault_description(text)) == []


def test_devices_cities_times_and_non_answers_are_not_faults():
    assert misses(NOT_FAULTS, is_fault_description) == []


def test_a_fault_with_device_city_or_time_mentioned_is_still_a_fault():
    assert is_fault_description("我的iPhone 15 Pro昨天在上海摔了一下")
    assert is_fault_description("周六上午突然开不了机")
