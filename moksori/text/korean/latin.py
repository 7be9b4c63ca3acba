"""Latin letters in Korean text, read as Hangul.

How a Latin token (letters, possibly with digits attached) is read, in order:

1. words written in capitals that Koreans say as a word (NASA → 나사), exact case;
2. our loanword dictionary (case-insensitive): common English words, brands and
   services as Koreans write them (OK → 오케이, iPhone → 아이폰, email → 이메일);
3. letters mixed with digits (mp3, 5G, A4, B2B): split into runs; letter runs are
   read as below (a lower-case dictionary word as the word: 4bit → 포비트), a single digit by its
   English name (쓰리, 파이브), two digits as a Sino-Korean number (S24 → 에스이십사), three or
   more digit by digit as model numbers are said (A380 → 에이삼팔공), except a round hundred,
   said as one (E300 → 이삼백, H100 → 에이치백);
4. all capitals of up to four letters, or longer ones not in CMUdict: an acronym,
   letter by letter (KBS → 케이비에스);
5. camelCase words not in the dictionary are split and each part is read;
6. other words through CMUdict and ko-speech-tools' English → Hangul converter;
7. words CMUdict lacks (Tacotron, Kubernetes) through espeak-ng's English letter-to-sound
   rules, their phonemes mapped to ARPAbet and converted the same way;
8. anything else (no vowel letter, or espeak unavailable) letter by letter.

The loanword dictionary exists because the CMUdict converter follows the
pronunciation too literally for words Korean has its own spelling for
(computer → 컴프유터 instead of 컴퓨터, Seoul → 솔).
"""

from __future__ import annotations

import re
from functools import cache

from ko_speech_tools.g2p.cmudict import CMUDict
from ko_speech_tools.g2p.english import convert_eng

from moksori.text.korean.numbers import sino_korean

LETTER_NAMES = {
    "a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지",
    "h": "에이치", "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔",
    "o": "오", "p": "피", "q": "큐", "r": "알", "s": "에스", "t": "티", "u": "유",
    "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}  # fmt: skip

ENGLISH_DIGITS = ("제로", "원", "투", "쓰리", "포", "파이브", "식스", "세븐", "에잇", "나인")

# Capitalised words said as a word rather than spelled out; matched in exact case.
WORD_ACRONYMS = {
    "NASA": "나사", "NATO": "나토", "UNESCO": "유네스코", "UNICEF": "유니세프",
    "OPEC": "오펙", "FIFA": "피파", "ASEAN": "아세안", "APEC": "에이펙",
    "IKEA": "이케아", "LEGO": "레고", "OK": "오케이", "SWOT": "스와트",
    "PIN": "핀", "RAM": "램", "ROM": "롬", "LAN": "랜", "WAN": "완", "GIF": "지프",
    "JPEG": "제이펙", "PNG": "피엔지", "SQL": "에스큐엘", "GUI": "지유아이",
    "COVID": "코로나", "KOSPI": "코스피", "KOSDAQ": "코스닥", "KTX": "케이티엑스",
    "SRT": "에스알티", "FAQ": "에프에이큐", "ASAP": "에이샙", "IoT": "아이오티",
    "iOS": "아이오에스", "macOS": "맥오에스", "PhD": "피에이치디", "TED": "테드",
    "MERS": "메르스", "SARS": "사스", "AIDS": "에이즈", "ZIP": "집", "NAVER": "네이버",
    "KAIST": "카이스트", "POSTECH": "포스텍", "IVE": "아이브", "EXO": "엑소", "PSY": "싸이", "LoL": "롤", "VER": "버전",
    "NASDAQ": "나스닥", "OLED": "올레드", "AMOLED": "아몰레드",
    "DRAM": "디램", "NAND": "낸드", "KOTRA": "코트라", "COEX": "코엑스", "KOICA": "코이카", "THAAD": "사드",
    "BRICS": "브릭스", "SIM": "심", "eSIM": "이심", "MZ": "엠지", "YOLO": "욜로", "FLEX": "플렉스",
    "MPEG": "엠펙", "TOEIC": "토익",
    # capitalised English words of signs and labels, said as words
    "ON": "온", "OFF": "오프", "NEW": "뉴", "HOT": "핫", "SALE": "세일", "BEST": "베스트", "FREE": "프리",
    "OPEN": "오픈", "SHOP": "숍", "CAFE": "카페", "MENU": "메뉴", "LIVE": "라이브", "LOVE": "러브",
    "HOME": "홈", "NEWS": "뉴스", "BOOK": "북", "GAME": "게임", "STOP": "스톱", "PUSH": "푸시", "PULL": "풀",
    "TOEFL": "토플", "TEPS": "텝스", "OPIc": "오픽", "IELTS": "아이엘츠",
}  # fmt: skip

# Written forms with punctuation or digits inside; matched case-insensitively
# as whole tokens before anything else reads the text.
PHRASES = {
    "wi-fi": "와이파이", "e-mail": "이메일", "e-mails": "이메일", "covid-19": "코로나 일구",
    "t-shirt": "티셔츠", "t-shirts": "티셔츠", "k-pop": "케이팝", "k-drama": "케이드라마",
    "k-beauty": "케이뷰티", "hip-hop": "힙합", "x-ray": "엑스레이", "e-sports": "이스포츠",
    "e-book": "이북", "c++": "씨플플", "c#": "씨샵", "f#": "에프샵", ".net": "닷넷",
    "mr.": "미스터", "mrs.": "미시즈", "ms.": "미즈", "dr.": "닥터", "prof.": "프로페서",
    "a/s": "에이에스", "thank you": "땡큐", "e.g.": "예를 들어", "i.e.": "즉",
    "u.s.": "유에스", "u.k.": "유케이", "ph.d.": "피에이치디", "ph.d": "피에이치디",
    "https://": "에이치티티피에스 ", "http://": "에이치티티피 ", "a.i.": "에이아이",
    "co-op": "코옵", "check-in": "체크인", "check-out": "체크아웃", "log-in": "로그인",
    "sign-in": "사인인", "add-on": "애드온", "walk-in": "워크인", "drive-thru": "드라이브스루",
    "self-service": "셀프서비스", "pop-up": "팝업", "set-up": "셋업", "start-up": "스타트업",
    "follow-up": "팔로업", "make-up": "메이크업", "rock'n'roll": "로큰롤", "coca-cola": "코카콜라",
    "rolls-royce": "롤스로이스", "7-eleven": "세븐일레븐", "le sserafim": "르세라핌",
    "paris baguette": "파리바게뜨", "(g)i-dle": "여자아이들", "gen.g": "젠지", "ver.": "버전 ", "mercedes-benz": "메르세데스벤츠",
    "hewlett-packard": "휼렛패커드",
}  # fmt: skip

# Lower-case keys. Korean spellings as commonly written (mostly 외래어 표기법).
LOANWORDS = {
    # everyday words
    "ok": "오케이", "okay": "오케이", "hello": "헬로", "hi": "하이", "bye": "바이",
    "yes": "예스", "no": "노", "thank": "땡크", "thanks": "땡스", "sorry": "쏘리",
    "please": "플리즈", "wow": "와우", "cool": "쿨", "nice": "나이스", "good": "굿",
    "bad": "배드", "best": "베스트", "new": "뉴", "hot": "핫", "love": "러브",
    "happy": "해피", "birthday": "버스데이", "party": "파티", "christmas": "크리스마스",
    "merry": "메리", "coffee": "커피", "cafe": "카페", "latte": "라테", "americano": "아메리카노",
    "espresso": "에스프레소", "cappuccino": "카푸치노", "mocha": "모카", "tea": "티",
    "juice": "주스", "cola": "콜라", "beer": "비어", "wine": "와인", "whisky": "위스키",
    "whiskey": "위스키", "cocktail": "칵테일", "pizza": "피자", "pasta": "파스타",
    "spaghetti": "스파게티", "steak": "스테이크", "burger": "버거", "hamburger": "햄버거",
    "sandwich": "샌드위치", "salad": "샐러드", "bread": "브레드", "cake": "케이크",
    "chocolate": "초콜릿", "candy": "캔디", "cookie": "쿠키", "donut": "도넛",
    "doughnut": "도넛", "ice": "아이스", "cream": "크림", "icecream": "아이스크림",
    "yogurt": "요거트", "cheese": "치즈", "butter": "버터", "ham": "햄", "bacon": "베이컨",
    "sausage": "소시지", "chicken": "치킨", "menu": "메뉴", "restaurant": "레스토랑",
    "hotel": "호텔", "motel": "모텔", "resort": "리조트", "bus": "버스", "taxi": "택시",
    "train": "트레인", "subway": "서브웨이", "car": "카", "bike": "바이크", "truck": "트럭",
    "ticket": "티켓", "tour": "투어", "travel": "트래블", "center": "센터", "centre": "센터",
    "mall": "몰", "mart": "마트", "market": "마켓", "shop": "숍", "store": "스토어",
    "shopping": "쇼핑", "sale": "세일", "coupon": "쿠폰", "point": "포인트", "card": "카드",
    "bank": "뱅크", "cash": "캐시", "pay": "페이", "price": "프라이스", "service": "서비스",
    "style": "스타일", "fashion": "패션", "design": "디자인", "designer": "디자이너",
    "model": "모델", "brand": "브랜드", "size": "사이즈", "color": "컬러", "colour": "컬러",
    "black": "블랙", "white": "화이트", "red": "레드", "blue": "블루", "green": "그린",
    "pink": "핑크", "gold": "골드", "silver": "실버", "shirt": "셔츠", "jacket": "재킷",
    "coat": "코트", "jeans": "진", "shoes": "슈즈", "bag": "백", "hat": "햇",
    "home": "홈", "house": "하우스", "room": "룸", "apartment": "아파트", "office": "오피스",
    "building": "빌딩", "tower": "타워", "park": "파크", "city": "시티", "world": "월드",
    "music": "뮤직", "song": "송", "album": "앨범", "concert": "콘서트", "dance": "댄스",
    "show": "쇼", "movie": "무비", "film": "필름", "drama": "드라마", "star": "스타",
    "idol": "아이돌", "fan": "팬", "fandom": "팬덤", "game": "게임", "sports": "스포츠",
    "sport": "스포츠", "soccer": "사커", "football": "풋볼", "baseball": "베이스볼",
    "basketball": "바스켓볼", "golf": "골프", "tennis": "테니스", "team": "팀", "club": "클럽",
    "league": "리그", "goal": "골", "fighting": "파이팅", "champion": "챔피언",
    "health": "헬스", "fitness": "피트니스", "yoga": "요가", "diet": "다이어트",
    "news": "뉴스", "top": "톱", "hit": "히트", "live": "라이브", "special": "스페셜",
    "premium": "프리미엄", "event": "이벤트", "festival": "페스티벌", "free": "프리",
    "open": "오픈", "close": "클로즈", "start": "스타트", "stop": "스톱", "end": "엔드",
    "smart": "스마트", "power": "파워", "plus": "플러스", "pro": "프로", "max": "맥스",
    "mini": "미니", "ultra": "울트라", "lite": "라이트", "light": "라이트", "air": "에어",
    "edition": "에디션", "version": "버전", "series": "시리즈", "season": "시즌",
    "level": "레벨", "core": "코어", "bit": "비트", "ver": "버전", "stage": "스테이지", "mode": "모드", "type": "타입",
    "mister": "미스터", "miss": "미스", "sir": "서", "madam": "마담",
    # technology
    "computer": "컴퓨터", "laptop": "랩톱", "notebook": "노트북", "tablet": "태블릿",
    "phone": "폰", "smartphone": "스마트폰", "mobile": "모바일", "internet": "인터넷",
    "online": "온라인", "offline": "오프라인", "email": "이메일", "mail": "메일",
    "web": "웹", "website": "웹사이트", "site": "사이트", "homepage": "홈페이지",
    "blog": "블로그", "app": "앱", "apps": "앱", "application": "애플리케이션",
    "software": "소프트웨어", "hardware": "하드웨어", "program": "프로그램",
    "programming": "프로그래밍", "code": "코드", "coding": "코딩", "data": "데이터",
    "database": "데이터베이스", "server": "서버", "cloud": "클라우드", "network": "네트워크",
    "system": "시스템", "platform": "플랫폼", "digital": "디지털", "file": "파일",
    "folder": "폴더", "download": "다운로드", "upload": "업로드", "update": "업데이트",
    "login": "로그인", "logout": "로그아웃", "password": "패스워드", "user": "유저",
    "account": "어카운트", "click": "클릭", "keyboard": "키보드", "mouse": "마우스",
    "monitor": "모니터", "screen": "스크린", "display": "디스플레이", "camera": "카메라",
    "video": "비디오", "audio": "오디오", "speaker": "스피커", "headphone": "헤드폰",
    "headphones": "헤드폰", "earphone": "이어폰", "earphones": "이어폰", "battery": "배터리",
    "charger": "차저", "cable": "케이블", "chip": "칩", "robot": "로봇", "drone": "드론",
    "sensor": "센서", "pixel": "픽셀", "bluetooth": "블루투스", "wifi": "와이파이",
    "browser": "브라우저", "chat": "챗", "chatbot": "챗봇", "message": "메시지",
    "messenger": "메신저", "post": "포스트", "posting": "포스팅", "hashtag": "해시태그",
    "selfie": "셀피", "streaming": "스트리밍", "stream": "스트림", "channel": "채널",
    "podcast": "팟캐스트", "playlist": "플레이리스트", 
    "algorithm": "알고리즘", "python": "파이썬", "java": "자바", "javascript": "자바스크립트",
    "linux": "리눅스", "unix": "유닉스", "android": "안드로이드", "windows": "윈도우",
    "window": "윈도우", "office365": "오피스삼육오", "excel": "엑셀", "word": "워드",
    "powerpoint": "파워포인트", "photoshop": "포토샵", "chrome": "크롬", "safari": "사파리",
    "firefox": "파이어폭스", "github": "깃허브", "git": "깃", "docker": "도커",
    "kubernetes": "쿠버네티스", "token": "토큰", "deep": "딥", "learning": "러닝",
    "machine": "머신", "chatgpt": "챗지피티", "gpt": "지피티", "openai": "오픈에이아이",
    "metaverse": "메타버스", "blockchain": "블록체인", "bitcoin": "비트코인",
    "crypto": "크립토", "nft": "엔에프티", "startup": "스타트업", "ceo": "씨이오",
    "emoji": "이모지", "meme": "밈", "spam": "스팸", "virus": "바이러스", "hacker": "해커",
    "hacking": "해킹", "backup": "백업", "reset": "리셋", "test": "테스트", "demo": "데모",
    "beta": "베타", "alpha": "알파", "bug": "버그", "error": "에러", "setting": "세팅",
    "settings": "세팅스", "option": "옵션", "icon": "아이콘", 
    "zoom": "줌", "skype": "스카이프", "slack": "슬랙", "notion": "노션", "gemini": "제미나이", "llama": "라마",
    # companies, brands, services
    "google": "구글", "youtube": "유튜브", "youtuber": "유튜버", "apple": "애플",
    "iphone": "아이폰", "ipad": "아이패드", "ipod": "아이팟", "imac": "아이맥",
    "macbook": "맥북", "airpods": "에어팟", "mac": "맥", "icloud": "아이클라우드",
    "itunes": "아이튠즈", "siri": "시리", "microsoft": "마이크로소프트", "amazon": "아마존",
    "facebook": "페이스북", "instagram": "인스타그램", "insta": "인스타", "twitter": "트위터",
    "tiktok": "틱톡", "netflix": "넷플릭스", "disney": "디즈니", "spotify": "스포티파이",
    "samsung": "삼성", "galaxy": "갤럭시", "hyundai": "현대", "kia": "기아",
    "naver": "네이버", "kakao": "카카오", "kakaotalk": "카카오톡", "coupang": "쿠팡",
    "lotte": "롯데", "daum": "다음", "line": "라인", "toss": "토스", "baemin": "배민",
    "genie": "지니", "melon": "멜론", "nike": "나이키", "adidas": "아디다스",
    "starbucks": "스타벅스", "mcdonald's": "맥도날드", "mcdonalds": "맥도날드",
    "mcdonald": "맥도날드", "burgerking": "버거킹", "kfc": "케이에프씨", 
    "cocacola": "코카콜라", "pepsi": "펩시", "sony": "소니", "nintendo": "닌텐도",
    "playstation": "플레이스테이션", "xbox": "엑스박스", "intel": "인텔", "nvidia": "엔비디아",
    "tesla": "테슬라", "toyota": "도요타", "honda": "혼다", "bmw": "비엠더블유",
    "benz": "벤츠", "audi": "아우디", "volvo": "볼보", "ford": "포드", "uber": "우버",
    "airbnb": "에어비앤비", "paypal": "페이팔", "visa": "비자", "mastercard": "마스터카드",
    "gucci": "구찌", "chanel": "샤넬", "prada": "프라다", "louis": "루이", "vuitton": "비통",
    "zara": "자라", "uniqlo": "유니클로", "costco": "코스트코", "walmart": "월마트",
    "emart": "이마트", "olive": "올리브", "gmail": "지메일", "outlook": "아웃룩",
    "yahoo": "야후", "wikipedia": "위키피디아", "linkedin": "링크드인", "reddit": "레딧",
    "discord": "디스코드", "twitch": "트위치", "telegram": "텔레그램", "whatsapp": "왓츠앱",
    "wechat": "위챗", "huawei": "화웨이", "xiaomi": "샤오미", "lenovo": "레노버",
    "dell": "델", "asus": "에이수스", "canon": "캐논", "nikon": "니콘", "lg": "엘지",
    "sk": "에스케이", "kt": "케이티", "cj": "씨제이", "gs": "지에스", "hybe": "하이브",
    "jyp": "제이와이피", "yg": "와이지", "sm": "에스엠", "blackpink": "블랙핑크",
    "twice": "트와이스", "newjeans": "뉴진스", "aespa": "에스파", "seventeen": "세븐틴",
    "marvel": "마블", "pokemon": "포켓몬", "lego": "레고", "barbie": "바비",
    # Korean companies, foreign brands and K-pop names as Koreans write them (CMUdict gave 신헌 for
    # Shinhan, 해너 for Hana, 미터 for Meta, 허미즈 for Hermes)
    "shinhan": "신한", "woori": "우리", "hana": "하나", "hanwha": "한화", "doosan": "두산",
    "celltrion": "셀트리온", "krafton": "크래프톤", "nexon": "넥슨", "ncsoft": "엔씨소프트",
    "netmarble": "넷마블", "electronics": "일렉트로닉스", "genesis": "제네시스", "meta": "메타",
    "anthropic": "앤트로픽", "alibaba": "알리바바", "qualcomm": "퀄컴", "ediya": "이디야",
    "lotteria": "롯데리아", "dominos": "도미노", "domino's": "도미노", "puma": "푸마", "converse": "컨버스",
    "hermes": "에르메스", "dior": "디올", "mercedes": "메르세데스", "porsche": "포르쉐", "ferrari": "페라리",
    "lamborghini": "람보르기니", "volkswagen": "폭스바겐", "nissan": "닛산", "chevrolet": "쉐보레",
    "shinee": "샤이니", "enhypen": "엔하이픈", "nmixx": "엔믹스", "itzy": "있지", "bigbang": "빅뱅", "rolster": "롤스터",
    "covid": "코로나", "corona": "코로나", "vaccine": "백신", "omicron": "오미크론",
    # places and people
    "korea": "코리아", "seoul": "서울", "busan": "부산", "incheon": "인천", "daegu": "대구",
    "daejeon": "대전", "gwangju": "광주", "ulsan": "울산", "jeju": "제주", "gangnam": "강남",
    "hongdae": "홍대", "itaewon": "이태원", "myeongdong": "명동", "japan": "재팬",
    "china": "차이나", "america": "아메리카", "usa": "유에스에이", "london": "런던",
    "paris": "파리", "tokyo": "도쿄", "newyork": "뉴욕", "york": "요크", "california": "캘리포니아",
    "hawaii": "하와이", "europe": "유럽", "asia": "아시아", "english": "잉글리시",
    "kim": "김", "lee": "이", "choi": "최", "jung": "정", "kang": "강",
    "john": "존", "james": "제임스", "michael": "마이클", "david": "데이비드",
    "mary": "메리", "jennifer": "제니퍼", "tom": "톰", "jane": "제인", "steve": "스티브",
    "jobs": "잡스", "bill": "빌", "gates": "게이츠", "elon": "일론", "musk": "머스크",
    "trump": "트럼프", "biden": "바이든", "obama": "오바마", "shakespeare": "셰익스피어",
    "harry": "해리", "potter": "포터", "mozart": "모차르트", "beethoven": "베토벤",
    # work and school
    "meeting": "미팅", "project": "프로젝트", "team-up": "팀업", "manager": "매니저",
    "leader": "리더", "member": "멤버", "staff": "스태프", "boss": "보스", "part": "파트",
    "job": "잡", "career": "커리어", "interview": "인터뷰", "report": "리포트",
    "schedule": "스케줄", "deadline": "데드라인", "marketing": "마케팅", "business": "비즈니스",
    "global": "글로벌", "trend": "트렌드", "issue": "이슈", "idea": "아이디어", "plan": "플랜",
    "process": "프로세스", "strategy": "스트래티지", "skill": "스킬", "know-how": "노하우",
    "knowhow": "노하우", "feedback": "피드백", "check": "체크", "list": "리스트",
    "checklist": "체크리스트", "memo": "메모", "note": "노트", "pen": "펜", "paper": "페이퍼",
    "school": "스쿨", "class": "클래스", "lesson": "레슨", "study": "스터디", "campus": "캠퍼스",
    "mentor": "멘토", "coach": "코치", "tip": "팁", "tips": "팁", "quiz": "퀴즈",
    "level-up": "레벨업", "challenge": "챌린지", "mission": "미션", "bonus": "보너스",
    "dollar": "달러", "dollars": "달러", "euro": "유로", "euros": "유로", "won": "원",
    "percent": "퍼센트", "kilo": "킬로", "mega": "메가", "giga": "기가", "nano": "나노",
    # common function words, so short phrases read naturally
    "the": "더", "a": "에이", "an": "언", "and": "앤드", "or": "오어", "of": "오브",
    "in": "인", "on": "온", "at": "앳", "to": "투", "for": "포", "with": "위드",
    "by": "바이", "from": "프롬", "my": "마이", "your": "유어", "you": "유", "me": "미",
    "we": "위", "is": "이즈", "are": "아", "be": "비", "it": "잇", "this": "디스",
    "that": "댓", "not": "낫", "all": "올", "one": "원", "two": "투", "three": "쓰리",
    "four": "포", "five": "파이브", "six": "식스", "seven": "세븐", "eight": "에잇",
    "nine": "나인", "ten": "텐", "zero": "제로", "first": "퍼스트", "second": "세컨드",
    "third": "서드", "last": "라스트", "next": "넥스트", "big": "빅", "small": "스몰",
    "high": "하이", "low": "로우", "up": "업", "down": "다운", "out": "아웃",
    "day": "데이", "night": "나이트", "time": "타임", "life": "라이프", "family": "패밀리",
    "baby": "베이비", "kids": "키즈", "kid": "키드", "man": "맨", "woman": "우먼",
    "girl": "걸", "boy": "보이", "friend": "프렌드", "friends": "프렌즈", "story": "스토리",
    "dream": "드림", "magic": "매직", "king": "킹", "queen": "퀸", "prince": "프린스",
    "princess": "프린세스", "hero": "히어로", "angel": "엔젤", "lucky": "럭키",
    "sweet": "스위트", "real": "리얼", "fresh": "프레시", "fast": "패스트", "food": "푸드",
    "1st": "퍼스트", "2nd": "세컨드", "3rd": "서드", "4th": "포스", "5th": "피프스",
    "mp3": "엠피쓰리", "mp4": "엠피포", "5g": "파이브지", "4g": "포지", "3g": "쓰리지",
    "lte": "엘티이", "3d": "쓰리디", "2d": "투디", "4k": "포케이", "8k": "에잇케이",
    "www": "더블유더블유더블유", "com": "컴", "net": "넷", "org": "오알지", "kr": "케이알",
    "html": "에이치티엠엘", "pdf": "피디에프", "vs": "브이에스", "etc": "등",
}  # fmt: skip

_LETTER_RUN_OR_DIGITS = re.compile(r"[A-Za-z]+|\d+")
_CAMEL_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@cache
def _cmudict() -> CMUDict:
    """Loaded on first use: reading the dictionary takes about half a second."""
    return CMUDict()


def spell_letters(word: str) -> str:
    """Letter by letter: 'KBS' → '케이비에스'."""
    return "".join(LETTER_NAMES[c] for c in word.lower() if c in LETTER_NAMES)


def _read_digit_run(digits: str) -> str:
    if len(digits) == 1:
        return ENGLISH_DIGITS[int(digits)]
    if len(digits) == 3 and digits.endswith("00"):  # a round hundred is said as one: E300 → 이삼백, H100
        return sino_korean(int(digits))
    if len(digits) >= 3:  # a model number: A380 → 에이삼팔공, 520d → 오이공디
        return "".join("공" if d == "0" else sino_korean(int(d)) for d in digits)
    return sino_korean(int(digits))


def _read_with_cmudict(word: str) -> str | None:
    cmu = _cmudict()
    if word not in cmu:
        return None
    reading = convert_eng(word, cmu)
    if not reading or not all("가" <= c <= "힣" for c in reading):
        return None
    return reading


# espeak-ng's English phoneme names → CMUdict's ARPAbet, so that a word no dictionary knows is
# transliterated by the same rules (ko-speech-tools') as a CMUdict word.
_ESPEAK_VOWELS = {
    "a": "AE", "a#": "AH", "A:": "AA", "A@": "AA R", "aI": "AY", "aI@": "AY ER", "aI3": "AY ER",
    "aU": "AW", "aU@": "AW ER", "E": "EH", "e@": "EH R", "eI": "EY", "@": "AH", "@2": "AH",
    "@5": "AH", "@L": "AH L", "3": "ER", "3:": "ER", "I": "IH", "I2": "IH", "I#": "IH", "i": "IY",
    "i:": "IY", "i@": "IY R", "i@3": "IY R", "O": "AO", "O:": "AO", "O@": "AO R", "o@": "AO R",
    "OI": "OY", "oU": "OW", "0": "AA", "U": "UH", "U@": "UH R", "u:": "UW", "V": "AH",
}  # fmt: skip
_ESPEAK_CONSONANTS = {
    "p": "P", "b": "B", "t": "T", "t#": "T", "d": "D", "d#": "D", "k": "K", "g": "G", "f": "F",
    "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M",
    "n": "N", "n-": "N", "N": "NG", "l": "L", "l-": "L", "r": "R", "r-": "R", "w": "W", "j": "Y",
    "tS": "CH", "dZ": "JH",
}  # fmt: skip


def _espeak_to_arpabet(phonemes: str) -> str | None:
    """"t 'a k @ t r ,0 n" → "T AE1 K AH0 T R AA2 N"; None if a phoneme has no ARPAbet match."""
    arpabet = []
    for name in phonemes.split():
        stress = "1" if name.startswith("'") else "2" if name.startswith(",") else "0"
        name = name.lstrip("',")
        if name in _ESPEAK_CONSONANTS:
            arpabet.append(_ESPEAK_CONSONANTS[name])
        elif name in _ESPEAK_VOWELS:
            vowel, *rest = _ESPEAK_VOWELS[name].split()
            arpabet.extend([vowel + stress, *rest])
        elif name:
            return None
    return " ".join(arpabet) or None


def _read_with_espeak(word: str) -> str | None:
    """A word in neither dictionary, by espeak-ng's English letter-to-sound rules. A word with no
    vowel letter (Xyzzq) is left to be spelled: real words without one are in CMUdict already."""
    if not any(letter in "aeiou" for letter in word.lower()):
        return None
    from moksori.espeak import EspeakError, phonemes

    try:
        clauses = phonemes(word)
    except (EspeakError, OSError):
        return None
    arpabet = _espeak_to_arpabet(" ".join(clauses))
    if arpabet is None:
        return None
    reading = convert_eng(word, {word: [arpabet]})
    return reading if reading and all("가" <= c <= "힣" for c in reading) else None


def _is_camel_case(word: str) -> bool:
    return any(a.islower() and b.isupper() for a, b in zip(word, word[1:]))


def _read_letters_only(word: str) -> str:
    """A run of letters that is not in the dictionaries."""
    if len(word) == 1:
        return LETTER_NAMES[word.lower()]
    if word.isupper():
        if len(word) >= 5:
            return _read_with_cmudict(word) or spell_letters(word)
        return spell_letters(word)
    if _is_camel_case(word):
        return "".join(read_latin(part) for part in _CAMEL_PARTS.findall(word))
    lower = word.lower()
    if lower.endswith("s") and lower[:-1] in LOANWORDS:
        return LOANWORDS[lower[:-1]] + "스"
    return _read_with_cmudict(word) or _read_with_espeak(word) or spell_letters(word)


def _read_mixed(token: str) -> str:
    """Letters with digits attached (mp3, 5G, KF94)."""
    parts = []
    for run in _LETTER_RUN_OR_DIGITS.findall(token):
        if run.isdigit():
            parts.append(_read_digit_run(run))
        elif run.islower() and run in LOANWORDS:  # 4bit → 포비트, 4in1; capitals stay letters (A4)
            parts.append(LOANWORDS[run])
        elif len(run) <= 3:
            parts.append(spell_letters(run))
        else:
            parts.append(read_latin(run))
    return "".join(parts)


def read_latin(token: str) -> str:
    """Read one Latin token (letters, digits, inner apostrophes) as Hangul.

    >>> read_latin("USB"), read_latin("iPhone"), read_latin("mp3")
    ('유에스비', '아이폰', '엠피쓰리')
    """
    if token in WORD_ACRONYMS:
        return WORD_ACRONYMS[token]
    if token.isalpha() and token.isupper() and len(token) <= 3:
        return spell_letters(token)  # acronyms first: IT, not the word "it"
    lower = token.lower()
    if lower in LOANWORDS:
        return LOANWORDS[lower]
    if any(c.isdigit() for c in token):
        return _read_mixed(token)
    if "'" in token:
        reading = _read_with_cmudict(token)
        if reading:
            return reading
        return "".join(_read_letters_only(part) for part in token.split("'") if part)
    return _read_letters_only(token)
