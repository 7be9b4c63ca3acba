"""Units, currency signs and the counters that decide how a number before them is read."""

from __future__ import annotations

# Unit symbols written after a number (case-sensitive), with their Hangul reading.
# A reading may carry a prefix said before the number: 100km/h → 시속 백 킬로미터.
UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("시속", "킬로미터"), "km/s": ("초속", "킬로미터"), "m/s": ("초속", "미터"),
    "mph": ("시속", "마일"), "°F": ("화씨", "도"), "℉": ("화씨", "도"),
    "km²": ("", "제곱킬로미터"), "m²": ("", "제곱미터"), "cm²": ("", "제곱센티미터"),
    "m³": ("", "세제곱미터"), "cm³": ("", "세제곱센티미터"),
    "km": ("", "킬로미터"), "cm": ("", "센티미터"), "mm": ("", "밀리미터"),
    "μm": ("", "마이크로미터"), "nm": ("", "나노미터"), "m": ("", "미터"),
    "kg": ("", "킬로그램"), "mg": ("", "밀리그램"), "μg": ("", "마이크로그램"), "g": ("", "그램"),
    "mL": ("", "밀리리터"), "ml": ("", "밀리리터"), "L": ("", "리터"), "l": ("", "리터"),
    "cc": ("", "시시"),
    "TB": ("", "테라바이트"), "GB": ("", "기가바이트"), "MB": ("", "메가바이트"),
    "KB": ("", "킬로바이트"), "kB": ("", "킬로바이트"),
    "Gbps": ("", "기가비피에스"), "Mbps": ("", "메가비피에스"),
    "GHz": ("", "기가헤르츠"), "MHz": ("", "메가헤르츠"), "kHz": ("", "킬로헤르츠"),
    "Hz": ("", "헤르츠"),
    "kWh": ("", "킬로와트시"), "kW": ("", "킬로와트"), "W": ("", "와트"), "V": ("", "볼트"),
    "mAh": ("", "밀리암페어시"), "dB": ("", "데시벨"),
    "kcal": ("", "킬로칼로리"), "cal": ("", "칼로리"),
    "ms": ("", "밀리초"), "min": ("", "분"), "sec": ("", "초"),
    "ft": ("", "피트"), "inch": ("", "인치"), "oz": ("", "온스"), "lb": ("", "파운드"),
    "lbs": ("", "파운드"), "ha": ("", "헥타르"), "ppm": ("", "피피엠"), "fps": ("", "에프피에스"),
    "°C": ("", "도"), "℃": ("", "도"), "°": ("", "도"),
    "%p": ("", "퍼센트포인트"), "%": ("", "퍼센트"),
}  # fmt: skip

# Units after which a negative number is a temperature below zero: -5℃ → 영하 오 도.
TEMPERATURE_UNITS = frozenset({"°C", "℃", "°F", "℉"})

# Currency signs written before the number; rewritten as a counter after it.
CURRENCY_SIGNS = {"$": "달러", "₩": "원", "€": "유로", "£": "파운드", "¥": "엔"}

# Counters read with native numbers (세 개, 스무 명). 번, 분 and 대 are decided by
# context in normalize.py and are not listed here.
NATIVE_COUNTERS = frozenset("""
개 명 마리 살 시 시간 잔 병 장 그릇 달 권 채 켤레 송이 사람 군데 가지 벌 척 줄 통 곳
자루 쌍 포기 그루 다발 알 톨 바퀴 차례 판 접시 조각 봉지 상자 박스 캔 컵 끼 골 곡 칸
걸음 방울 모금 숟가락 배 밤 마디 문장 글자 단어 문제 팀 가구 발 방 통화
""".split())

# Counters read with Sino-Korean numbers (삼 분, 이천이십육 년).
SINO_COUNTERS = frozenset("""
분 초 원 년 년대 년도 년생 일 층 호 호선 호실 회 회차 학년 학기 세 등 점 도 퍼센트 개월
개국 개년 주 주년 주일 주차 세기 세대 차 단계 페이지 쪽 번지 번길 동 인분 인 인치 박 교시
부 반 위 승 패 세트 라운드 시즌 기 달러 유로 엔 파운드 위안 킬로 킬로미터 킬로그램 그램
미터 센티 센티미터 밀리 밀리미터 리터 평 톤 항 절 퍼센트포인트 배럴 마일 광년
""".split())

# Nouns that, right after "N번", make it a label (삼 번 출구) rather than a count
# of times (세 번 했다).
NUMBERED_NOUNS = (
    "출구", "선수", "버스", "마을버스", "문제", "문항", "게이트", "트랙", "채널", "방", "타자",
    "타석", "홀", "국도", "고속도로", "도로", "승강장", "플랫폼", "좌석", "자리", "카드", "항목",
    "레인", "코스", "노선", "창구", "차량", "학생", "후보", "참가자", "답", "보기", "질문", "곡",
    "테이블", "환자", "손님", "파일", "사진", "그림", "칸", "번호", "조항", "라인", "주자",
)

# Copula endings that make "N번" a label too: 정답은 3번입니다 → 삼 번입니다.
NUMBERED_COPULAS = ("입니다", "이에요", "이야", "이다", "이고", "인가요", "일까요")

# Nouns for people before "N분": 손님 3분 → 손님 세 분 (honorific counter for people).
PEOPLE_NOUNS = ("손님", "어르신", "선생님", "고객", "교수님", "어른", "환자", "참석자", "부모님", "분들")
