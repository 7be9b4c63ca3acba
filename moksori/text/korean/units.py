"""Units, currency signs and the counters that decide how a number before them is read."""

from __future__ import annotations

# Unit symbols written after a number (case-sensitive), with their Hangul reading.
# A reading may carry a prefix said before the number: 100km/h → 시속 백 킬로미터.
UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("시속", "킬로미터"), "km/s": ("초속", "킬로미터"), "m/s": ("초속", "미터"),
    "mph": ("시속", "마일"), "μg/m³": ("세제곱미터당", "마이크로그램"), "mg/dL": ("", "밀리그램 퍼 데시리터"),
    "km/L": ("리터당", "킬로미터"), "km/l": ("리터당", "킬로미터"), "°F": ("화씨", "도"), "℉": ("화씨", "도"),
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
    "hPa": ("", "헥토파스칼"), "kPa": ("", "킬로파스칼"), "MPa": ("", "메가파스칼"),
    "kWh": ("", "킬로와트시"), "kW": ("", "킬로와트"), "W": ("", "와트"), "V": ("", "볼트"),
    "mAh": ("", "밀리암페어시"), "dB": ("", "데시벨"),
    "kcal": ("", "킬로칼로리"), "cal": ("", "칼로리"),
    "ms": ("", "밀리초"), "min": ("", "분"), "sec": ("", "초"),
    "ft": ("", "피트"), "inch": ("", "인치"), "oz": ("", "온스"), "lb": ("", "파운드"),
    "lbs": ("", "파운드"), "ha": ("", "헥타르"), "ppm": ("", "피피엠"), "fps": ("", "에프피에스"),
    "°C": ("", "도"), "℃": ("", "도"), "°": ("", "도"),
    "%p": ("", "퍼센트포인트"), "%P": ("", "퍼센트포인트"), "%": ("", "퍼센트"),
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
큰술 작은술 스푼 티스푼 뿌리 공기 모 근 봉 꼬집 줌 움큼 가닥 덩이 덩어리 갑 팩 표 경기
""".split())

# Counters read with Sino-Korean numbers (삼 분, 이천이십육 년).
SINO_COUNTERS = frozenset("""
분 초 원 년 년대 년도 년생 일 층 호 호선 호실 회 회차 학년 학기 세 등 점 도 퍼센트 개월
개국 개년 주 주년 주일 주차 세기 세대 차 단계 페이지 쪽 번지 번길 동 인분 인 인치 박 교시
부 반 위 승 패 세트 라운드 시즌 기 달러 유로 엔 파운드 위안 킬로 킬로미터 킬로그램 그램
미터 센티 센티미터 밀리 밀리미터 리터 평 톤 항 절 퍼센트포인트 배럴 마일 광년 시리즈
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

# --- context cues for readings that depend on the words around a number (normalize.py) ---------

# Nouns after a dotted month.day that make it the name of a historical event, read digit by digit:
# 5.18 민주화운동 → 오일팔, 4.19 혁명 → 사일구 (not decimals).
EVENT_NOUNS = (
    "민주화운동", "민주항쟁", "민주묘지", "운동", "혁명", "전쟁", "사변", "사태", "사건", "의거", "항쟁",
    "선언", "성명", "합의", "광복", "테러", "참사", "학살", "정신", "기념", "특별법", "쿠데타", "정변",
    "묘역", "유공자", "남북", "공동",
)

# Words near "M/D" that make it a date (12/25 → 십이월 이십오 일) rather than a fraction.
DATE_CUES_BEFORE = ("오는", "지난", "이번", "다음", "날짜", "일정", "마감", "기한", "개강", "개학", "출시",
                    "접수", "기간", "시행", "발표", "예정일", "생일", "기념일", "매주", "매년", "올해", "내년", "작년")
DATE_CUES_AFTER = ("부터", "까지", "마감", "개강", "개학", "출시", "예정", "개최", "오픈", "시행", "발표",
                   "부로", "자로", "일자", "당일", "날", "에 열", "에 개최", "에 출시", "에 시작", "에 마감")
WEEKDAYS = "월화수목금토일"

# Nouns for machines and vehicles before "N대" or right after it: 자동차 20대 → 스무 대 (a count),
# where a bare round ten would be an age group (20대 남성 → 이십 대).
MACHINE_NOUNS = (
    "자동차", "승용차", "차량", "차", "버스", "트럭", "택시", "오토바이", "자전거", "비행기", "항공기",
    "전투기", "헬기", "헬리콥터", "드론", "기차", "열차", "전동차", "선박", "배", "컴퓨터", "노트북", "서버",
    "기계", "장비", "카메라", "스마트폰", "휴대폰", "휴대전화", "전화기", "태블릿", "로봇", "피아노",
    "냉장고", "세탁기", "에어컨", "선풍기", "텔레비전", "티브이", "모니터", "프린터", "엘리베이터",
    "탱크", "전차", "굴착기", "크레인", "차를", "대수",
)

# Nouns after "N대" that make it a Sino-Korean ordinal or ranking (25대 대통령 → 이십오 대,
# 세계 3대 영화제 → 삼 대), not a count of machines.
RANKED_NOUNS = (
    "대통령", "국회", "국회의원", "총선", "대선", "회장", "총장", "왕", "임금", "교황", "장관", "총리",
    "의장", "시장", "도지사", "영화제", "강국", "기업", "도시", "뉴스", "명문", "천재", "과제", "요소",
    "원칙", "은행", "그룹", "재벌", "주주", "종손", "손자", "독자", "원칙", "경전", "성인", "발명",
    "질환", "악재", "시장", "수출", "거장",
)

# Words after an age-group "N대" (20대 남성); used with MACHINE_NOUNS to settle round tens.
AGE_NOUNS = ("남성", "여성", "남녀", "청년", "직장인", "초반", "중반", "후반", "이상", "이하", "젊은이",
             "남자", "여자", "학생", "엄마", "아빠", "부부", "환자", "연령", "층", "세대", "때")

# Words after "N+M" (편의점 1+1 행사) that make it a buy-N-get-M offer, read in English (원 플러스 원).
OFFER_NOUNS = ("행사", "이벤트", "상품", "제품", "할인", "증정", "세일", "혜택", "판매", "프로모션", "쿠폰",
               "묶음", "특가", "구매", "기획")
OFFER_CUES_BEFORE = ("편의점", "마트", "매장", "행사", "특가", "세일")

# Words before a signed number of 도 that make it an angle (기울기 -5도 → 마이너스 오 도). Without
# one, 도 after a signed number is a temperature (기온 -5도 → 영하 오 도): Korean text mostly writes
# negative degrees for the weather.
ANGLE_CUES = ("각도", "각", "기울기", "기울", "회전", "경사", "위도", "경도", "방향", "틸트")

# Words before a decimal-looking number that make it a software version (버전 3.11 → 삼 점 십일).
VERSION_CUES = ("버전", "ver", "Ver", "VER", "version", "Version", "업데이트", "릴리스", "릴리즈", "패치")

# Words around "N-M" that make it a score (3-2로 이겼다 → 삼 대 이로), not a subtraction.
SCORE_CUES_BEFORE = ("스코어", "점수", "세트", "경기", "전반", "후반", "최종")
SCORE_CUES_AFTER = ("승리", "승", "패", "이겼", "이기", "졌", "지고", "패배", "역전", "완승", "완패", "무승부", "비겼",
                    "앞서", "앞섰", "뒤지", "뒤졌", "리드", "신승", "석패", "대승", "대패", "우승", "동점")
