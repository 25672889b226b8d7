"""Hand-picked word lists and templates for the SynthPosts benchmark (see `synthposts.py`).

Emoji are named as in the `emoji` package (`emoji.EMOJI_DATA[...]["en"]` without colons).
Every list here is sentiment-balanced by construction: templates, hashtags, slang, captions and
neutral phrases are shared by all posts, so only the sentiment slots carry the label.
"""
from __future__ import annotations

# --- Emoji drawn in images, by sentiment ---------------------------------------------------

POSITIVE_EMOJI = """
party_popper birthday_cake cupcake shortcake ice_cream soft_ice_cream doughnut cookie
chocolate_bar candy lollipop pizza hamburger french_fries strawberry cherries watermelon
tropical_drink clinking_glasses clinking_beer_mugs bottle_with_popping_cork cocktail_glass
sun sun_with_face rainbow sunflower tulip bouquet rose cherry_blossom hibiscus four_leaf_clover
red_heart orange_heart yellow_heart green_heart blue_heart purple_heart sparkling_heart
growing_heart two_hearts revolving_hearts heart_with_ribbon love_letter heart_hands
grinning_face grinning_face_with_big_eyes beaming_face_with_smiling_eyes
smiling_face_with_heart-eyes smiling_face_with_hearts star-struck partying_face
smiling_face_with_sunglasses face_with_tears_of_joy rolling_on_the_floor_laughing
smiling_face_with_smiling_eyes smiling_face_with_halo winking_face face_blowing_a_kiss
grinning_cat smiling_cat_with_heart-eyes dog_face cat_face rabbit_face hatching_chick
baby_chick panda koala unicorn butterfly dolphin trophy 1st_place_medal sports_medal crown
gem_stone money_bag wrapped_gift balloon confetti_ball fireworks sparkler sparkles glowing_star
ferris_wheel roller_coaster beach_with_umbrella desert_island clapping_hands thumbs_up
raising_hands OK_hand victory_hand love-you_gesture teddy_bear ring kiss_mark sunrise
hundred_points carousel_horse mirror_ball people_hugging man_dancing woman_dancing
""".split()

NEGATIVE_EMOJI = """
cloud_with_lightning_and_rain cloud_with_lightning cloud_with_rain tornado cyclone skull
skull_and_crossbones broken_heart crying_face loudly_crying_face angry_face enraged_face
face_with_symbols_on_mouth pouting_cat crying_cat weary_cat weary_face tired_face
disappointed_face pensive_face worried_face anguished_face fearful_face face_screaming_in_fear
confounded_face persevering_face frowning_face face_vomiting nauseated_face
face_with_thermometer face_with_head-bandage sneezing_face downcast_face_with_sweat
sad_but_relieved_face face_with_steam_from_nose angry_face_with_horns exploding_head
face_holding_back_tears hot_face cold_face wastebasket fire_engine ambulance police_car_light
bomb collision fire warning no_entry prohibited cross_mark thumbs_down coffin headstone
funeral_urn syringe drop_of_blood biohazard radioactive cockroach mosquito spider_web rat
wilted_flower chart_decreasing money_with_wings low_battery volcano derelict_house zombie
dagger crossed_swords anger_symbol right_anger_bubble middle_finger microbe pile_of_poo
face_with_crossed-out_eyes
""".split()

NEUTRAL_EMOJI = """
chair pencil package rock wood brick bucket broom basket scissors paperclip linked_paperclips
pushpin round_pushpin straight_ruler triangular_ruler crayon pen fountain_pen paintbrush memo
clipboard calendar spiral_calendar spiral_notepad notebook ledger closed_book open_book
books newspaper file_folder open_file_folder card_index file_cabinet card_file_box
page_facing_up label envelope inbox_tray outbox_tray postbox key old_key locked unlocked hammer
wrench screwdriver nut_and_bolt gear magnet ladder toolbox hook carpentry_saw clamp plunger
bathtub shower soap sponge roll_of_paper toothbrush lotion_bottle safety_pin thread yarn
sewing_needle knot door window bed couch_and_lamp mirror seat desktop_computer laptop
keyboard computer_mouse printer computer_disk floppy_disk dvd videocassette television
radio telephone mobile_phone battery electric_plug light_bulb flashlight candle camera
video_camera film_projector magnifying_glass_tilted_left microscope telescope
satellite_antenna abacus balance_scale hourglass_done mantelpiece_clock stopwatch timer_clock
watch thermometer compass world_map bus taxi automobile bicycle kick_scooter tractor
delivery_truck pickup_truck tram metro locomotive railway_car ferry motor_boat canoe airplane
helicopter fuel_pump vertical_traffic_light house office_building factory school post_office
hotel convenience_store department_store classical_building stadium tent hut mountain
potato carrot onion garlic cucumber broccoli leafy_green bell_pepper ear_of_corn bread
baguette_bread egg cooked_rice canned_food salt butter cheese_wedge beans peanuts chestnut
olive bowl_with_spoon spoon fork_and_knife chopsticks teapot jar glass_of_milk cow horse ox
goat ewe pig chicken duck snail turtle ant beetle fish crab rooster donkey camel zebra
elephant hippopotamus rhinoceros badger deer seal neutral_face expressionless_face
face_without_mouth thinking_face face_with_raised_eyebrow face_with_monocle
zipper-mouth_face cloud droplet leaf_fluttering_in_wind deciduous_tree evergreen_tree cactus
potted_plant seedling herb feather t-shirt jeans socks scarf gloves coat necktie backpack
briefcase handbag billed_cap glasses closed_umbrella running_shoe hiking_boot soccer_ball
basketball baseball tennis volleyball bowling ping_pong chess_pawn puzzle_piece game_die kite
flying_disc yo-yo skateboard ice_skate sled
""".split()

# Short nouns for names that read badly in a tweet (everything else: underscores -> spaces).
NOUN_OVERRIDES = {
    "magnifying_glass_tilted_left": "magnifying glass",
    "couch_and_lamp": "couch",
    "bowl_with_spoon": "bowl",
    "fork_and_knife": "cutlery",
    "hourglass_done": "hourglass",
    "mantelpiece_clock": "clock",
    "leaf_fluttering_in_wind": "leaf",
    "face_without_mouth": "blank face",
    "face_with_raised_eyebrow": "raised eyebrow face",
    "face_with_monocle": "monocle face",
    "zipper-mouth_face": "zipper face",
    "vertical_traffic_light": "traffic light",
    "closed_umbrella": "umbrella",
    "billed_cap": "cap",
    "round_pushpin": "pin",
    "linked_paperclips": "paperclips",
    "computer_disk": "disk",
    "roll_of_paper": "toilet roll",
    "card_file_box": "file box",
    "page_facing_up": "page",
    "glass_of_milk": "milk",
}

# --- Text lexicon --------------------------------------------------------------------------
# ADJ fills "{adj}" (an adjective phrase), REACT fills "{react}" (a short reaction).

ADJ = {
    "positive": ["amazing", "awesome", "perfect", "beautiful", "great", "lovely", "fantastic",
                 "wonderful", "incredible", "so good", "the best", "adorable", "gorgeous",
                 "brilliant", "stunning", "delightful"],
    "negative": ["awful", "terrible", "horrible", "the worst", "disgusting", "ruined",
                 "a disaster", "depressing", "gross", "sad", "pathetic", "nasty", "miserable",
                 "painful", "a nightmare", "dreadful"],
    "neutral": ["ordinary", "regular", "the usual", "standard", "right there", "new",
                "unchanged", "as expected", "interesting", "different", "a thing",
                "there again", "beige", "medium sized", "rectangular", "on schedule"],
}

REACT = {
    "positive": ["love it", "so happy", "best day ever", "cant stop smiling", "blessed",
                 "yesss", "made my day", "living for this", "obsessed", "so grateful",
                 "pure joy", "this is everything"],
    "negative": ["hate this", "so done", "worst day ever", "ugh", "cant deal", "so upset",
                 "ruined my day", "not ok", "so sad", "fml", "im furious", "never again"],
    "neutral": ["no comment", "thoughts?", "just saying", "anyway", "so yeah", "fyi", "noted",
                "make of it what u will", "idk", "thats it", "well then", "it is what it is",
                "so this happened", "as one does"],
}

HASHTAGS = {
    "positive": ["#blessed", "#happy", "#goodvibes", "#love", "#winning", "#bestday", "#joy"],
    "negative": ["#fml", "#fail", "#worst", "#ugh", "#sad", "#hateit", "#disaster"],
    "neutral": ["#monday", "#random", "#update", "#tbt", "#photo", "#daily", "#life",
                "#today", "#nofilter", "#weekend", "#stuff", "#pic"],
}

TEXT_EMOJI = {
    "positive": ["😍", "🥳", "😊", "❤", "🎉", "👍", "✨", "😁", "🙌"],
    "negative": ["😭", "😡", "💔", "😩", "👎", "🤬", "😤", "😞", "🙄"],
    "neutral": ["📌", "📷", "👀", "🤔", "🗓", "📎", "➡", "📍"],
}

# Neutral fillers shared by every post: they never carry sentiment.
WHEN = ["today", "this morning", "rn", "last night", "on monday", "at 3pm", "again",
        "this week", "earlier", "just now", "yesterday", "tonight"]
SLANG = ["ngl", "tbh", "fr", "rn", "imo", "btw", "lowkey", "idk", "srsly", "like"]
HANDLE_WORDS = ["alex", "sam", "jo", "kim", "max", "lee", "rio", "nova", "ash", "mika",
                "dani", "theo", "bea", "zed", "pat", "remy"]

# Every template has an {obj} slot and one sentiment slot ({adj} or {react}); {emo}, {tag},
# {user}, {when}, {slang} are optional decorations shared by all sentiments.
TEMPLATES = [
    "{adj} {obj} {when} {emo}",
    "this {obj} {when}... {react} {tag}",
    "{user} look at this {obj}, {adj} {emo}",
    "ok so the {obj} {when} was {adj}",
    "{react}. the {obj}. {tag}",
    "me and my {obj} {when}: {react} {emo}",
    "{slang} the {obj} is {adj}",
    "got a {obj} {when} and its {adj} {tag}",
    "when the {obj} is {adj} {emo}",
    "{when} the {obj} happened. {react}",
    "not me with a {obj} {when} {react} {emo}",
    "{user} {user} the {obj} is {adj}!!",
    "pov: {adj} {obj} {tag}",
    "{obj} update: {react} {emo}",
    "so the {obj} is {adj} {slang}",
    "can we talk about this {obj}? {adj} {tag}",
    "{react} {emo} {obj} {when}",
    "just a {obj}. {adj}. {tag}",
    "{obj} check {when}: {adj}",
    "my {obj} {when}... {react}",
    "another day another {obj}. {react} {tag}",
    "{slang} {react}, the {obj} {when}",
    "found this {obj} {when}. {adj} {emo}",
    "the {obj} situation is {adj} {tag}",
    "{user} remember the {obj}? {react}",
    "rating this {obj}: {adj} {emo}",
    "{when}: {obj}. verdict: {adj}",
    "thread on the {obj} {when} 1/ {react}",
    "{adj} {obj} alert {emo} {tag}",
    "who else has a {obj}? mine is {adj}",
    "{obj} {obj} {obj}. {react}",
    "live footage of my {obj} {when} {react}",
    "{react}!! {obj} {tag} {emo}",
    "the {obj} {when} tho. {adj}",
    "{slang} this {obj} is {adj} {emo}",
    "just me and the {obj}. {react} {user}",
    "{user} the {obj} arrived {when}. {react}",
    "day 3 of posting my {obj}: {adj}",
    "{obj} of the day: {adj} {tag}",
    "nobody: ... me: {obj} {when} {react}",
    "update on the {obj}: {adj} {slang}",
    "{react} {tag} #{objtag}",
    "brought the {obj} {when}. {react} {emo}",
    "quick pic of the {obj}. {adj}",
    "so i tried the {obj} {when}, {adj} {tag}",
    "{obj} mood {when}: {react}",
    "unpopular opinion: the {obj} is {adj}",
    "{user} saw ur {obj} {when}. {adj} {emo}",
]

# Meme captions drawn on images: neutral by design (the other choice is the subject's name).
CAPTIONS = ["ME RN", "MONDAY", "WHEN YOU", "NOBODY:", "POV", "ANYWAY", "SO THIS HAPPENED",
            "LOOK", "THE LATEST", "DAY 3", "CURRENT STATUS", "ME EXPLAINING", "MEANWHILE",
            "EXHIBIT A", "SPOTTED", "THIS WEEK"]
