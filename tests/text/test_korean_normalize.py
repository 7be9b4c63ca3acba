import warnings

import pytest

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.korean.normalize import normalize


NATIVE_COUNTERS = [
    ("3개", "세 개"),
    ("1개", "한 개"),
    ("2개", "두 개"),
    ("4개", "네 개"),
    ("20명", "스무 명"),
    ("21살", "스물한 살"),
    ("11명", "열한 명"),
    ("1시간", "한 시간"),
    ("24시간", "스물네 시간"),
    ("1권", "한 권"),
    ("5마리", "다섯 마리"),
    ("2잔", "두 잔"),
    ("3병", "세 병"),
    ("10장", "열 장"),
    ("2그릇", "두 그릇"),
    ("3달", "세 달"),
    ("2채", "두 채"),
    ("1켤레", "한 켤레"),
    ("12송이", "열두 송이"),
    ("4사람", "네 사람"),
    ("3군데", "세 군데"),
    ("7가지", "일곱 가지"),
    ("2벌", "두 벌"),
    ("1척", "한 척"),
    ("2줄", "두 줄"),
    ("3통", "세 통"),
    ("5곳", "다섯 곳"),
    ("2배", "두 배"),
    ("125개", "백스물다섯 개"),
    ("100명", "백 명"),
    ("101명", "백한 명"),
    ("10,025개", "만 스물다섯 개"),
    ("0개", "영 개"),
    ("3 개", "세 개"),
    ("사과 3개를", "사과 세 개를"),
    ("99마리", "아흔아홉 마리"),
    ("3조각", "세 조각"),
]

SINO_COUNTERS = [
    ("3분", "삼 분"),
    ("10초", "십 초"),
    ("500원", "오백 원"),
    ("2026년", "이천이십육 년"),
    ("3일", "삼 일"),
    ("5층", "오 층"),
    ("1203호", "천이백삼 호"),
    ("3회", "삼 회"),
    ("2학년", "이 학년"),
    ("20세", "이십 세"),
    ("20세기", "이십 세기"),
    ("1등", "일 등"),
    ("90점", "구십 점"),
    ("30도", "삼십 도"),
    ("6개월", "육 개월"),
    ("3주", "삼 주"),
    ("1차", "일 차"),
    ("3단계", "삼 단계"),
    ("15페이지", "십오 페이지"),
    ("20쪽", "이십 쪽"),
    ("101동", "백일 동"),
    ("2인분", "이 인분"),
    ("1990년대", "천구백구십 년대"),
    ("2박 3일", "이 박 삼 일"),
    ("1위", "일 위"),
    ("3학년 2반", "삼 학년 이 반"),
    ("1.5시간", "일 점 오 시간"),
    ("10개국", "십 개국"),
    ("5분의 1", "오분의 일"),
]

AMBIGUOUS_COUNTERS = [
    ("3번 출구", "삼 번 출구"),
    ("2번 선수", "이 번 선수"),
    ("7번 버스", "칠 번 버스"),
    ("정답은 3번입니다.", "정답은 삼 번입니다."),
    ("3번 했다", "세 번 했다"),
    ("5번이나 봤어요", "다섯 번이나 봤어요"),
    ("1번만", "한 번만"),
    ("10분 후에", "십 분 후에"),
    ("손님 3분이 오셨어요", "손님 세 분이 오셨어요"),
    ("3분께서 오셨다", "세 분께서 오셨다"),
    ("20대 남성", "이십 대 남성"),
    ("차 3대", "차 세 대"),
    ("12대", "열두 대"),
    ("3 대학", "삼 대학"),
    ("2 알약", "이 알약"),
]

DATES = [
    ("6월", "유월"),
    ("10월", "시월"),
    ("11월", "십일월"),
    ("1월 1일", "일월 일 일"),
    ("2026년 11월 21일", "이천이십육 년 십일월 이십일 일"),
    ("2026-11-21", "이천이십육 년 십일월 이십일 일"),
    ("2026-06-05", "이천이십육 년 유월 오 일"),
    ("2026/10/09", "이천이십육 년 시월 구 일"),
    ("2026.11.21.에 만나요", "이천이십육 년 십일월 이십일 일에 만나요"),
    ("오늘은 2026.11.21.", "오늘은 이천이십육 년 십일월 이십일 일."),
    ("2026. 11. 21. 오후", "이천이십육 년 십일월 이십일 일 오후"),
]

TIMES = [
    ("오후 3시 30분", "오후 세 시 삼십 분"),
    ("14:30", "열네 시 삼십 분"),
    ("9:05", "아홉 시 오 분"),
    ("12:00", "열두 시"),
    ("0:30", "영 시 삼십 분"),
    ("10:20:30", "열 시 이십 분 삼십 초"),
    ("3시 반", "세 시 반"),
    ("1시", "한 시"),
    ("3 PM", "오후 세 시"),
    ("10:30 a.m.", "오전 열 시 삼십 분"),
    ("9:00-18:00", "아홉 시에서 열여덟 시"),
]

MONEY = [
    ("15,000원", "만 오천 원"),
    ("4,500원", "사천오백 원"),
    ("1,000원", "천 원"),
    ("100원", "백 원"),
    ("$5", "오 달러"),
    ("$1.5", "일 점 오 달러"),
    ("₩5,000", "오천 원"),
    ("€20", "이십 유로"),
    ("£10", "십 파운드"),
    ("¥1000", "천 엔"),
    ("5만 원", "오만 원"),
    ("1만원", "만 원"),
    ("1,000만 원", "천만 원"),
    ("2억 5천만 원", "이억 오천만 원"),
    ("3조 원", "삼조 원"),
    ("$5만", "오만 달러"),
    ("$1.5 million", "백오십만 달러"),
    ("½ 컵", "이분의 일 컵"),
    ("±5", "플러스마이너스 오"),
    ("$1.25 billion", "십이억 오천만 달러"),
    ("3 billion 달러", "삼십억 달러"),
]

PLAIN_NUMBERS = [
    ("10000", "만"),
    ("100", "백"),
    ("1000", "천"),
    ("10001", "만 일"),
    ("1,234,567", "백이십삼만 사천오백육십칠"),
    ("100000000", "일억"),
    ("1조", "일조"),
    ("3.14", "삼 점 일사"),
    ("0.5", "영 점 오"),
    ("-5", "마이너스 오"),
    ("(-3)", "(마이너스 삼)"),
    ("+5", "플러스 오"),
    ("50%", "오십 퍼센트"),
    ("3.5%", "삼 점 오 퍼센트"),
    ("3/4", "사분의 삼"),
    ("1/2", "이분의 일"),
    ("007", "공공칠"),
    ("0", "영"),
    ("2만큼", "이만큼"),
    ("숫자 2026이", "숫자 이천이십육이"),
]

RANGES = [
    ("3~4개", "세 개에서 네 개"),
    ("10~20명", "열 명에서 스무 명"),
    ("1~2시간", "한 시간에서 두 시간"),
    ("21일~23일", "이십일 일에서 이십삼 일"),
    ("3~5일", "삼 일에서 오 일"),
    ("10%~20%", "십 퍼센트에서 이십 퍼센트"),
    ("3~4", "삼에서 사"),
    ("2-3일", "이 일에서 삼 일"),
    ("2020–2023년", "이천이십 년에서 이천이십삼 년"),
    ("10:30~12:00", "열 시 삼십 분에서 열두 시"),
    ("50~60대", "오십 대에서 육십 대"),
    # two neighbouring digits with a comma: one approximate count
    ("2,3명", "두세 명"),
    ("사과 7,8개", "사과 일고여덟 개"),
    ("1,2시간", "한두 시간"),
    ("3,4일", "삼사 일"),
    ("1,2학년", "일이 학년"),
    ("3,4월", "삼사월"),
    ("1,234명", "천이백서른네 명"),
    ("월~금 9시~6시", "월요일에서 금요일 아홉 시에서 여섯 시"),
    ("평일(월-금요일)까지", "평일(월요일에서 금요일)까지"),
    ("월~금액", "월 금액"),
]

SIGNS = [
    ("1+1=2", "일 더하기 일은 이"),
    ("2 + 3 = 5", "이 더하기 삼은 오"),
    ("5 - 3 = 2", "오 빼기 삼은 이"),
    ("3×4", "삼 곱하기 사"),
    ("1920x1080", "천구백이십 곱하기 천팔십"),
    ("8÷2", "팔 나누기 이"),
    ("3:2로 이겼다", "삼 대 이로 이겼다"),
    ("A & B", "에이 앤드 비"),
    ("#해시태그", "샵 해시태그"),
    ("3·1절", "삼일절"),
    ("6·25 전쟁", "육이오 전쟁"),
    ("x²", "엑스 제곱"),
    ("π", "파이"),
]

UNITS = [
    ("5km", "오 킬로미터"),
    ("5kg", "오 킬로그램"),
    ("200g", "이백 그램"),
    ("20cm", "이십 센티미터"),
    ("3mm", "삼 밀리미터"),
    ("1.5m", "일 점 오 미터"),
    ("500mL", "오백 밀리리터"),
    ("500ml", "오백 밀리리터"),
    ("2L", "이 리터"),
    ("64GB", "육십사 기가바이트"),
    ("512MB", "오백십이 메가바이트"),
    ("100KB", "백 킬로바이트"),
    ("2TB", "이 테라바이트"),
    ("60Hz", "육십 헤르츠"),
    ("44.1kHz", "사십사 점 일 킬로헤르츠"),
    ("100km/h", "시속 백 킬로미터"),
    ("25℃", "이십오 도"),
    ("25°C", "이십오 도"),
    ("-5℃", "영하 오 도"),
    ("80°F", "화씨 팔십 도"),
    ("84m²", "팔십사 제곱미터"),
    ("84㎡", "팔십사 제곱미터"),
    ("5 kg", "오 킬로그램"),
    ("10%p", "십 퍼센트포인트"),
    ("-3.5kg", "마이너스 삼 점 오 킬로그램"),
    ("220V", "이백이십 볼트"),
]

PHONE_NUMBERS_AND_ORDINALS = [
    ("010-1234-5678", "공일공 일이삼사 오육칠팔"),
    ("02-123-4567", "공이 일이삼 사오육칠"),
    ("01012345678", "공일공 일이삼사 오육칠팔"),
    ("1588-1234", "일오팔팔 일이삼사"),
    ("123-45-67890", "일이삼 사오 육칠팔구공"),
    ("+82-10-1234-5678", "플러스 팔이 일공 일이삼사 오육칠팔"),
    ("제3회", "제삼 회"),
    ("제 3 장", "제삼 장"),
    ("제1차", "제일 차"),
    ("2번째", "두 번째"),
    ("1번째", "첫 번째"),
    ("11번째", "열한 번째"),
    ("20번째", "스무 번째"),
    ("No. 1", "넘버 일"),
]

LATIN = [
    # Words no dictionary knows: espeak-ng's letter-to-sound rules, not letter by letter.
    ("Tacotron 모델", "태커트란 모델"),
    ("Kubernetes 클러스터", "쿠버네티스 클러스터"),
    ("Zelensky 대통령", "젤렌스키 대통령"),
    ("KBS", "케이비에스"),
    ("USB", "유에스비"),
    ("AI", "에이아이"),
    ("IT", "아이티"),
    ("TV", "티브이"),
    ("CCTV", "씨씨티브이"),
    ("NASA", "나사"),
    ("OK", "오케이"),
    ("ok", "오케이"),
    ("Wi-Fi", "와이파이"),
    ("iPhone", "아이폰"),
    ("email", "이메일"),
    ("e-mail", "이메일"),
    ("Google", "구글"),
    ("YouTube", "유튜브"),
    ("computer", "컴퓨터"),
    ("Samsung", "삼성"),
    ("SAMSUNG", "삼성"),
    ("NEWS", "뉴스"),
    ("Seoul", "서울"),
    ("café", "카페"),
    ("McDonald's", "맥도날드"),
    ("R&D", "알앤디"),
    ("Q&A", "큐앤에이"),
    ("C++", "씨플플"),
    ("Mr. Kim", "미스터 김"),
    ("mp3", "엠피쓰리"),
    ("MP3", "엠피쓰리"),
    ("5G", "파이브지"),
    ("3D 프린터", "쓰리디 프린터"),
    ("A4 용지", "에이포 용지"),
    ("B2B", "비투비"),
    ("KF94", "케이에프구십사"),
    ("COVID-19", "코로나 일구"),
    ("iOS 17", "아이오에스 십칠"),
    ("KBS뉴스", "케이비에스뉴스"),
    ("iPhone을 샀다", "아이폰을 샀다"),
    ("www.naver.com", "더블유더블유더블유 닷 네이버 닷 컴"),
    ("abc@gmail.com", "에이비시 골뱅이 지메일 닷 컴"),
    ("hello world", "헬로 월드"),
    ("school", "스쿨"),
    ("Xyzzq", "엑스와이제트제트큐"),
    ("KakaoTalk", "카카오톡"),
    ("Thank you!", "땡큐!"),
]

JAMO_AND_WIDTH = [
    ("ㅋㅋ", "크크"),
    ("ㅎㅎ", "흐흐"),
    ("ㅠㅠ", "유유"),
    ("좋아요ㅋㅋㅋ", "좋아요크크크"),
    ("ㄳ", "그스"),
    ("３개", "세 개"),
    ("ＡＢＣ", "에이비씨"),
    ("１２，０００원", "만 이천 원"),
    ("①", "일"),
    ("Ⅱ장", "이장"),
]

PASS_THROUGH = [
    ("안녕하세요.", "안녕하세요."),
    ("정말요? 네!", "정말요? 네!"),
    ("그래서… 갔다", "그래서… 갔다"),
    ("'안녕'이라고 \"말했다\"", "'안녕'이라고 \"말했다\""),
    ("(괄호) [대괄호]", "(괄호) [대괄호]"),
    ("하나;  둘:   셋", "하나; 둘: 셋"),
    ("  앞뒤 공백\t탭\n줄  ", "앞뒤 공백 탭 줄"),
    ("서울~부산", "서울 부산"),
    ("안녕~", "안녕"),
    ("사과/배", "사과 배"),
    ("", ""),
]

SENTENCES = [
    (
        "오늘은 2026년 11월 21일, 사과 3개에 4,500원이에요.",
        "오늘은 이천이십육 년 십일월 이십일 일, 사과 세 개에 사천오백 원이에요.",
    ),
    ("회의는 오후 2시 30분에 3층에서 해요.", "회의는 오후 두 시 삼십 분에 삼 층에서 해요."),
    ("KTX로 서울에서 부산까지 2시간 40분 걸려요.", "케이티엑스로 서울에서 부산까지 두 시간 사십 분 걸려요."),
    ("USB 메모리 64GB가 15,000원입니다.", "유에스비 메모리 육십사 기가바이트가 만 오천 원입니다."),
    ("우리 아이는 5살이고 1학년이에요.", "우리 아이는 다섯 살이고 일 학년이에요."),
    ("기온이 -3℃까지 떨어졌어요.", "기온이 영하 삼 도까지 떨어졌어요."),
    ("010-1234-5678로 전화 주세요.", "공일공 일이삼사 오육칠팔로 전화 주세요."),
    ("지난해 매출은 1조 2천억 원이었다.", "지난해 매출은 일조 이천억 원이었다."),
]

ALL_CASES = (
    NATIVE_COUNTERS
    + SINO_COUNTERS
    + AMBIGUOUS_COUNTERS
    + DATES
    + TIMES
    + MONEY
    + PLAIN_NUMBERS
    + RANGES
    + SIGNS
    + UNITS
    + PHONE_NUMBERS_AND_ORDINALS
    + LATIN
    + JAMO_AND_WIDTH
    + PASS_THROUGH
    + SENTENCES
)


@pytest.mark.parametrize(("text", "expected"), ALL_CASES)
def test_normalize(text, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableTextWarning)
        assert normalize(text) == expected


def test_there_are_enough_cases():
    assert len(ALL_CASES) >= 170


@pytest.mark.parametrize(
    "text",
    ["가나다라마바사", "목소리로 말해요. 정말요? 네!", "쓱싹쓱싹 색칠 과정까지 즐길 수 있어요."],
)
def test_hangul_only_text_is_unchanged(text):
    assert normalize(text) == text


def test_decomposed_hangul_is_composed():
    decomposed = "\u1100\u1161\u11ab\u1112\u1161\u11ab"  # 간한 as conjoining jamo
    assert normalize(decomposed) == "간한"


def test_unreadable_characters_are_dropped_with_a_warning_naming_them():
    with pytest.warns(UnreadableTextWarning, match="😀") as caught:
        result = normalize("좋아요 😀 大韓民國")
    assert result == "좋아요"
    message = str(caught[0].message)
    assert "大" in message and "U+5927" in message


def test_empty_brackets_left_by_dropping_are_removed():
    with pytest.warns(UnreadableTextWarning):
        assert normalize("대한민국(大韓民國)은") == "대한민국은"


def test_cyrillic_is_unreadable():
    with pytest.warns(UnreadableTextWarning, match="П"):
        assert normalize("Привет 안녕") == "안녕"


def test_strict_mode_raises_with_the_characters():
    with pytest.raises(UnreadableTextError) as error:
        normalize("사랑해 ❤️ 中", strict=True)
    assert error.value.characters == ["❤", "中"]
    assert error.value.text == "사랑해 ❤️ 中"


def test_strict_mode_accepts_readable_text():
    assert normalize("사과 3개", strict=True) == "사과 세 개"


def test_readable_text_issues_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize("USB 3개와 ㅋㅋ, 50%!")


def test_output_has_no_digits_or_latin_letters():
    text = "2026-11-21 14:30 KBS 5kg $5 3/4 x86 v2 ©2024 ™"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableTextWarning)
        result = normalize(text)
    assert not any(c.isascii() and c.isalnum() for c in result)


def test_korean_corpus_is_unchanged(shared_data):
    corpus = shared_data / "korean_corpus.csv"
    lines = [line.split("\t")[0] for line in corpus.read_text(encoding="utf-8").splitlines()]
    changed = [line for line in lines if normalize(line) != " ".join(line.split())]
    assert changed == []


def test_espeak_phonemes_map_to_arpabet_with_stress():
    from moksori.text.korean.latin import _espeak_to_arpabet

    assert _espeak_to_arpabet("t 'a k @ t r ,0 n") == "T AE1 K AH0 T R AA2 N"
    assert _espeak_to_arpabet("s m 'A@ t f oU n") == "S M AA1 R T F OW0 N"
    assert _espeak_to_arpabet("x 'a") is None  # a phoneme with no ARPAbet match: not guessed
