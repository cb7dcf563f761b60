// C++ firmware linked with simcore's stock runtime: static constructors run
// before main (in priority order), a global object is constructed, and a
// virtual call goes through a base pointer. Exit code 0 only if all held.
#include <cstring>

#include "simcore_abi.h"

static void say(const char *s) { simcore_write(1, s, std::strlen(s)); }

static int first_value;  // set by the priority-101 constructor
static int ctor_value;   // set by the default-priority constructor, which runs later

__attribute__((constructor(101))) static void first(void)
{
    say("ctor 101\n");
    first_value = 1;
}

__attribute__((constructor)) static void later(void)
{
    say("ctor default\n");
    ctor_value = first_value + 41;
}

struct Global {
    int v;
    Global() : v(7) { say("ctor Global\n"); }
};
Global global_obj;

struct Base {
    virtual int f() const { return 1; }
    virtual ~Base() {}
};
struct Derived : Base {
    int f() const override { return 5; }
};

// noinline and a volatile pointer keep GCC from devirtualising the call.
__attribute__((noinline)) static int call(const Base *b) { return b->f(); }

int main()
{
    say("main\n");
    static Derived d;
    const Base *volatile b = &d;
    int r = call(b);
    if (ctor_value != 42 || global_obj.v != 7 || r != 5) {
        say("FAIL\n");
        return 1;
    }
    say("ok\n");
    return 0;
}
